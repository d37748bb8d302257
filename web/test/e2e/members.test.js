// The member list's moderation menu (issue 13), in Debian's Chromium
// against a real iotad: the rows carry no action buttons, a member the
// viewer may act on has one "⋯" whose menu (also opened by a click on the
// row) holds the time-outs, kick, ban and roles, and a member sees none.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, startIotad, launchChromium, newPage, loginWithKey, joinWith } from "./harness.js";

let srv, browser, owner, friend, ownerID, friendID;

before(async () => {
  srv = await startIotad();
  browser = await launchChromium();
  const ownerKey = readFileSync(join(srv.data, "owner.tu"), "utf8");
  execFileSync(bin, ["user", "add", "--data", srv.data, "--name", "friend", "--out", join(srv.data, "friend.tu")]);
  const friendKey = readFileSync(join(srv.data, "friend.tu"), "utf8");
  ownerID = ownerKey.split("::")[0].trim();
  friendID = friendKey.split("::")[0].trim();
  owner = await newPage(browser, srv.base, "members-owner");
  await loginWithKey(owner, ownerKey);
  await joinWith(owner, srv.invites[0], "Home");
  friend = await newPage(browser, srv.base, "members-friend");
  await loginWithKey(friend, friendKey);
  await joinWith(friend, srv.invites[1], "Friends");
  for (const p of [owner, friend]) {
    await p.click('#tree span:has-text("# general")');
    await p.waitForSelector("#composer:not([hidden])");
  }
  // The owner's list learns of the friend when they speak.
  await friend.fill("#message", "hello");
  await friend.press("#message", "Enter");
  await owner.waitForSelector(`#member-list li[data-user="${friendID}"]`);
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

const row = (id) => `#member-list li[data-user="${id}"]`;
const items = (p) => p.locator("#member-menu [role=menuitem]").allTextContents();

test("one ⋯ per member the viewer outranks, no action buttons in the rows", async () => {
  assert.equal(await owner.locator(`${row(friendID)} button`).count(), 1);
  assert.equal(await owner.textContent(`${row(friendID)} button`), "⋯");
  assert.equal(await owner.getAttribute(`${row(friendID)} .member-more`, "aria-label"), `Actions for ${await owner.textContent(`${row(friendID)} .name`)}`);
  assert.equal(await owner.locator(`${row(ownerID)} button`).count(), 0, "nothing to do to oneself");
  await friend.waitForSelector(row(ownerID));
  assert.equal(await friend.locator("#member-list button").count(), 0, "a member moderates nobody");
});

test("the menu: opened by ⋯ or the row, keyboard, Escape gives the focus back", async () => {
  await owner.click(`${row(friendID)} .member-more`);
  await owner.waitForSelector("#member-menu[role=menu]");
  assert.deepEqual(await items(owner), ["Time out for 1 hour", "Time out for 1 day", "Kick", "Ban", "Make admin", "Make moderator"]);
  assert.equal(await owner.getAttribute(`${row(friendID)} .member-more`, "aria-expanded"), "true");
  assert.equal(await owner.evaluate(() => document.activeElement.textContent), "Time out for 1 hour");
  await owner.keyboard.press("ArrowDown");
  assert.equal(await owner.evaluate(() => document.activeElement.textContent), "Time out for 1 day");
  await owner.keyboard.press("ArrowUp");
  await owner.keyboard.press("ArrowUp");
  assert.equal(await owner.evaluate(() => document.activeElement.textContent), "Make moderator", "the arrows wrap");
  await owner.keyboard.press("Escape");
  assert.equal(await owner.locator("#member-menu").count(), 0);
  assert.equal(await owner.evaluate(() => document.activeElement.className), "quiet member-more");
  // A click on the row opens it too; a click elsewhere closes it.
  await owner.click(`${row(friendID)} .name`);
  await owner.waitForSelector("#member-menu");
  await owner.click("#messages");
  assert.equal(await owner.locator("#member-menu").count(), 0);
});

test("time out, end it, change the role, kick: from the menu", async () => {
  const pick = async (label) => {
    await owner.click(`${row(friendID)} .member-more`);
    await owner.click(`#member-menu [role=menuitem]:text-is("${label}")`);
  };
  await pick("Time out for 1 hour");
  await owner.waitForSelector(`${row(friendID)} .timed-out`);
  await friend.waitForSelector(`${row(friendID)} .timed-out`);
  await owner.click(`${row(friendID)} .member-more`);
  assert.deepEqual(await items(owner), ["Time out for 1 hour", "Time out for 1 day", "End time out", "Kick", "Ban", "Make admin", "Make moderator"]);
  await owner.click('#member-menu [role=menuitem]:text-is("End time out")');
  await owner.waitForSelector(`${row(friendID)} .timed-out`, { state: "detached" });

  await pick("Make moderator");
  await owner.waitForSelector(`${row(friendID)}[data-role="moderator"]`);
  await owner.click(`${row(friendID)} .member-more`);
  assert.deepEqual((await items(owner)).slice(-2), ["Make admin", "Make member"]);
  await owner.keyboard.press("Escape");

  // Kick asks first: dismissed, nothing happens; accepted, they go.
  owner.once("dialog", (d) => d.dismiss());
  await pick("Kick");
  assert.equal(await owner.locator(row(friendID)).count(), 1);
  owner.once("dialog", (d) => d.accept());
  await pick("Kick");
  await owner.waitForSelector(row(friendID), { state: "detached" });
});
