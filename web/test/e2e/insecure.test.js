// The page opened over plain http on a name that is not localhost: the
// browser gives it no WebCrypto, and the page says what to do in words
// instead of failing with a script error. Also: a load asks for nothing
// the server does not have (no /favicon.ico 404).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startIotad } from "./harness.js";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
let srv, browser;

before(async () => {
  srv = await startIotad();
  browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--host-resolver-rules=MAP iotad.test 127.0.0.1"],
  });
});
after(async () => {
  await browser?.close();
  await srv?.remove();
});

test("over plain http on another name the page explains instead of failing", async () => {
  const port = new URL(srv.base).port;
  const page = await browser.newPage();
  const errors = [], missing = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("response", (r) => r.status() >= 400 && missing.push(`${r.status()} ${r.url()}`));
  await page.goto(`http://iotad.test:${port}/`);
  await page.waitForSelector("#insecure:not([hidden])");
  const text = await page.textContent("#insecure");
  assert.match(text, /needs https/);
  assert.equal(await page.getAttribute("#secure-url", "href"), `https://iotad.test:${port}/`);
  assert.equal(await page.isHidden("#login"), true);
  assert.deepEqual(errors, []);
  assert.deepEqual(missing, []);
});

test("on localhost the page loads without asking for anything that is not there", async () => {
  const page = await browser.newPage();
  const missing = [];
  page.on("response", (r) => r.status() >= 400 && missing.push(`${r.status()} ${r.url()}`));
  page.on("requestfailed", (r) => missing.push(`failed ${r.url()}`));
  await page.goto(srv.base.replace("127.0.0.1", "localhost") + "/");
  await page.waitForSelector("#login:not([hidden])");
  assert.equal(await page.isHidden("#insecure"), true);
  assert.deepEqual(missing, []);
});
