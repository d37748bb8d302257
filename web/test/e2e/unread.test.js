// Mentions and unread in Chromium (PROTOCOL §9 "Mentions and unread"): a
// mention badge appears on another page, and reading on one device
// clears the badge on the same user's other device.
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

test("a mention badge shows on both of my devices and reading on one clears both", async () => {
  const { base, data, invites } = srv;
  const ownerKey = readFileSync(join(data, "owner.tu"), "utf8");
  const desk = await newPage(browser, base, "desk");
  await loginWithKey(desk, ownerKey);
  await joinWith(desk, invites[0], "Home");
  const ownerName = (await desk.textContent("#me-person .name")).trim();

  const laptop = await newPage(browser, base, "laptop");
  await loginWithKey(laptop, ownerKey);
  await laptop.click('#community-list li:has-text("Home")');
  await laptop.waitForSelector('#tree span:has-text("general")');

  const friend = await registerPage(browser, srv, "friend");
  await joinWith(friend, invites[1], "Friends");
  await friend.click('#tree span:has-text("# general")');
  await friend.waitForSelector("#composer:not([hidden])");
  // The member list is what turns @Name into an id.
  await friend.waitForSelector(`#member-list .name:text-is("${ownerName}")`, { state: "attached" });
  await friend.fill("#message", `@${ownerName} look at this`);
  await friend.press("#message", "Enter");
  await friend.waitForSelector('#messages li:has-text("look at this")');

  // Neither of my pages has general open: both show the mention.
  for (const p of [desk, laptop]) {
    const badge = await p.waitForSelector("#tree .mention-badge");
    assert.equal((await badge.textContent()).trim(), "1");
    await p.waitForSelector("#tree li.unread");
  }

  // Reading on the desk clears the laptop's badge and its unread mark.
  await desk.click('#tree span:has-text("# general")');
  await desk.waitForSelector('#messages li.mentioned:has-text("look at this")');
  await laptop.waitForSelector("#tree .mention-badge", { state: "detached" });
  await laptop.waitForSelector("#tree li.unread", { state: "detached" });
  await desk.waitForSelector("#tree .mention-badge", { state: "detached" });
});
