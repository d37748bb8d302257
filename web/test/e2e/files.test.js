// Files and people (issue 13), in Debian's Chromium against a real iotad:
// an image uploaded on one page shows inline on the other, at its size,
// and a display name set on one page shows on the other.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, startIotad, launchChromium, newPage, loginWithKey, joinWith } from "./harness.js";

let srv, browser, owner, friend;

// A 3×2 PNG, made by hand so the test needs no image library.
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a0000001149444154789c63f8cfc0f01f86199039009b7e0bf572b0b93c0000000049454e44ae426082",
  "hex",
);

before(async () => {
  srv = await startIotad();
  browser = await launchChromium();
  owner = await newPage(browser, srv.base, "files-owner");
  await loginWithKey(owner, readFileSync(join(srv.data, "owner.tu"), "utf8"));
  await joinWith(owner, srv.invites[0], "Home");
  const token = execFileSync(bin, ["token", "create", "--data", srv.data, "--uses", "1"]).toString().trim();
  friend = await newPage(browser, srv.base, "files-friend");
  await friend.click("summary");
  await friend.fill("#token", token);
  await friend.click("#register-button");
  await friend.waitForSelector("#app:not([hidden])");
  await joinWith(friend, srv.invites[1], "Friends");
  for (const p of [owner, friend]) {
    await p.click('#tree span:has-text("# general")');
    await p.waitForSelector("#composer:not([hidden])");
  }
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

test("an uploaded image shows on the other page", async () => {
  const file = join(srv.data, "dot.png");
  writeFileSync(file, PNG);
  await owner.setInputFiles("#attach", file);
  const img = await friend.waitForSelector('#messages .attachments img[alt="dot.png"]');
  assert.equal(await img.getAttribute("width"), "3");
  assert.equal(await img.getAttribute("height"), "2");
  await friend.waitForFunction(() => document.querySelector('#messages .attachments img[alt="dot.png"]').naturalWidth === 3);
});

test("a changed display name shows on the other page", async () => {
  owner.once("dialog", (d) => d.accept("Captain Owner"));
  await owner.click("#profile-button");
  await friend.waitForSelector('#member-list :text("Captain Owner")');
  // The message sent before the change shows the new name too.
  await friend.waitForSelector('#messages li:has(img[alt="dot.png"]) .who:text("Captain Owner")');
  await owner.fill("#message", "named now");
  await owner.press("#message", "Enter");
  await friend.waitForSelector('#messages li:has-text("named now"):has-text("Captain Owner")');
});
