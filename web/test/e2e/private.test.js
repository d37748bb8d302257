// Private channels (PROTOCOL §9 "Private channels") in Chromium: the
// owner hides a channel from members in the administration; the member's
// page loses it, and a message sent there never shows on it, while the
// owner still sees the channel, with a lock.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { registerPage, shots, startIotad, launchChromium, newPage, loginWithKey, joinWith } from "./harness.js";

let srv, browser;

before(async () => {
  srv = await startIotad();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

test("a private channel stays invisible to a member", async () => {
  const { base, data, invites } = srv;
  const owner = await newPage(browser, base, "owner");
  await loginWithKey(owner, readFileSync(join(data, "owner.tu"), "utf8"));
  await joinWith(owner, invites[0], "Home");
  await owner.click("#admin-button");
  await owner.fill('[aria-label="Channel name"]', "lobby");
  await owner.click('#admin form button:has-text("Create")');
  await owner.waitForSelector('#tree span:has-text("# lobby")');

  const friend = await registerPage(browser, srv, "friend");
  await joinWith(friend, invites[1], "Friends");
  await friend.click('#tree span:has-text("# general")');
  await friend.waitForSelector("#composer:not([hidden])");

  // The owner hides general from members.
  await owner.click("#admin-button");
  await owner.check('[aria-label="Hide General/general from members"]');
  await owner.waitForSelector('#tree span:has-text("# general") .lock');

  // The member's page loses it, and the channel they were reading closes.
  await friend.waitForSelector('#tree span:has-text("# general")', { state: "detached" });
  await friend.waitForSelector("#composer", { state: "hidden" });
  await friend.click('#tree span:has-text("# lobby")');
  await friend.waitForSelector("#composer:not([hidden])");

  // A message there never shows: the owner's next message, in lobby,
  // arrives after it would have.
  await owner.click('#tree span:has-text("# general")');
  await owner.waitForSelector("#composer:not([hidden])");
  await owner.fill("#message", "staff only: the surprise party");
  await owner.press("#message", "Enter");
  await owner.waitForSelector('#messages li:has-text("surprise party")');
  await owner.click('#tree span:has-text("# lobby")');
  await owner.waitForSelector("#composer:not([hidden])");
  await owner.fill("#message", "hello everyone");
  await owner.press("#message", "Enter");
  await friend.waitForSelector('#messages li:has-text("hello everyone")');
  assert.ok(!(await friend.content()).includes("surprise party"), "the private message reached the member's page");
  assert.equal(await friend.locator('#tree span:has-text("# general")').count(), 0);
  assert.equal(await friend.locator("#tree .mention-badge").count(), 0);

  // The owner still sees it, locked, and the toggle stays on.
  assert.equal(await owner.locator('#tree span:has-text("# general") .lock').count(), 1);
  await owner.click("#admin-button");
  assert.ok(await owner.isChecked('[aria-label="Hide General/general from members"]'));
  await owner.screenshot({ path: join(shots, "private.png") });
});
