// Search (issue 13) in Chromium: one page posts, another searches for a
// word of it, sees the hit with the word marked, and opens its channel.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { registerPage, startIotad, launchChromium, newPage, loginWithKey, joinWith } from "./harness.js";

let srv, browser;

before(async () => {
  srv = await startIotad();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

test("a message one page posts is found by search on another", async () => {
  const { base, data, invites } = srv;
  const owner = await newPage(browser, base, "owner");
  await loginWithKey(owner, readFileSync(join(data, "owner.tu"), "utf8"));
  await joinWith(owner, invites[0], "Home");
  await owner.click('#tree span:has-text("# general")');
  await owner.waitForSelector("#composer:not([hidden])");
  await owner.fill("#message", "the <b>lighthouse</b> opens at nine");
  await owner.press("#message", "Enter");
  await owner.waitForSelector('#messages li:has-text("lighthouse")');

  const friend = await registerPage(browser, srv, "friend");
  await joinWith(friend, invites[1], "Friends");
  await friend.fill("#search", "Lighthouse");
  await friend.press("#search", "Enter");
  const hit = await friend.waitForSelector('#search-results .search-hit:has-text("opens at nine")');
  assert.equal(await hit.$eval("mark", (m) => m.textContent), "lighthouse");
  // The text stays text: the <b> the owner typed is not an element.
  assert.equal(await hit.$$eval(".text b", (bs) => bs.length), 0);
  assert.match(await hit.textContent(), /# general/);
  await hit.click();
  await friend.waitForSelector("#search-results", { state: "hidden" });
  await friend.waitForSelector('#messages li:has-text("opens at nine")');
});
