// The page on a name that is not localhost, over https with a certificate
// from a test CA that Chromium trusts through its NSS database (not by
// ignoring certificate errors): a person logs in, joins with a tls=1
// invite, chats and joins voice with the fake microphone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startIotad, loginWithKey, joinWith, openJoin } from "./harness.js";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
let srv, browser, dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "iotad-tls-"));
  const ossl = (...a) => execFileSync("openssl", a, { cwd: dir, stdio: "pipe" });
  ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
    "-days", "2", "-subj", "/CN=iotad test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
  ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=iotad.test");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:iotad.test,IP:127.0.0.1\n");
  ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem", "-days", "2",
    "-extfile", "ext.cnf");
  // Chromium on Linux trusts what $HOME/.pki/nssdb trusts.
  const home = join(dir, "home");
  mkdirSync(join(home, ".pki", "nssdb"), { recursive: true });
  const db = `sql:${join(home, ".pki", "nssdb")}`;
  execFileSync("certutil", ["-N", "-d", db, "--empty-password"]);
  execFileSync("certutil", ["-A", "-d", db, "-n", "iotad test CA", "-t", "C,,", "-i", join(dir, "ca.pem")]);
  srv = await startIotad(["--tls-cert", join(dir, "leaf.pem"), "--tls-key", join(dir, "leaf.key")]);
  browser = await chromium.launch({
    executablePath,
    env: { ...process.env, HOME: home },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--host-resolver-rules=MAP iotad.test 127.0.0.1",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
  });
});
after(async () => {
  await browser?.close();
  await srv?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("over https on another name a person logs in, joins with a tls=1 invite, chats and talks", async () => {
  const port = new URL(srv.base).port;
  const ctx = await browser.newContext({ permissions: ["microphone"] });
  const p = await ctx.newPage();
  let bytes = 0;
  const cdp = await ctx.newCDPSession(p);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  cdp.on("Network.loadingFinished", (e) => (bytes += e.encodedDataLength));
  const t0 = Date.now();
  await p.goto(`https://iotad.test:${port}/`);
  await p.waitForSelector("#login:not([hidden])");
  console.log(`first load over TLS: ${bytes} bytes transferred, interactive in ${Date.now() - t0} ms`);
  assert.equal(await p.evaluate(() => window.isSecureContext), true);
  await loginWithKey(p, readFileSync(join(srv.data, "owner.tu"), "utf8"));
  const invite = srv.invites[0];
  assert.match(invite, /&tls=1$/);
  await joinWith(p, invite.replace("127.0.0.1", "iotad.test"), "Home");
  await p.click('#tree span:has-text("# general")');
  await p.waitForSelector("#composer:not([hidden])");
  await p.fill("#message", "hello over tls");
  await p.press("#message", "Enter");
  await p.waitForSelector('#messages li:has-text("hello over tls")');
  await p.click('#tree span:has-text("voice")');
  await p.waitForSelector("#call:not([hidden])");
  await p.waitForFunction(() => (window.__iotadCalls || []).some((pc) => pc.connectionState === "connected"), null, { timeout: 20000 });
  // The same invite without tls=1 names a ws:// community, which an https
  // page may not open: the page says so in words.
  await openJoin(p);
  await p.fill("#invite", invite.replace("&tls=1", "").replace("127.0.0.1", "iotad.test"));
  await p.click("#add-community button");
  await p.waitForFunction(() => document.getElementById("status").textContent.includes("the browser blocks"));
  await ctx.close();
});
