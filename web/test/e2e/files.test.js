// Files and people (issue 13), in Debian's Chromium against a real iotad:
// an image uploaded on one page shows inline on the other, at its size,
// a display name set on one page shows on the other, and the images of a
// community on a port of its own show on the page of the main port.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { registerPage, bin, startIotad, launchChromium, newPage, loginWithKey, joinWith, freePort } from "./harness.js";

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
  friend = await registerPage(browser, srv, "files-friend");
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

// Last: it restarts the server, so that it listens on the new community's
// port.
test("an image of a community on its own port shows on the main port's page", async () => {
  const port = await freePort();
  const id = execFileSync(bin, ["community", "create", "--data", srv.data, "--name", "Side", "--addr", `127.0.0.1:${port}`]).toString().trim();
  await srv.stop();
  await srv.start();
  const out = execFileSync(bin, ["invite", "create", "--data", srv.data, "--community", id]).toString();
  const invite = out.split("\n").find((l) => l.startsWith("tensamin://"));
  assert.ok(invite?.includes(`127.0.0.1:${port}`), out);
  const token = execFileSync(bin, ["token", "create", "--data", srv.data, "--uses", "1"]).toString().trim();
  const side = await newPage(browser, srv.base, "files-side");
  const blocked = [];
  side.on("console", (m) => m.type() === "error" && blocked.push(m.text()));
  await side.click("summary");
  await side.fill("#token", token);
  await side.click("#register-button");
  await side.waitForSelector("#app:not([hidden])");
  await joinWith(side, invite, "Side");
  await side.click('#tree span:has-text("# general")');
  await side.waitForSelector("#composer:not([hidden])");
  const file = join(srv.data, "side.png");
  writeFileSync(file, PNG);
  await side.setInputFiles("#attach", file);
  const img = await side.waitForSelector('#messages .attachments img[alt="side.png"]');
  assert.ok((await img.getAttribute("src")).startsWith(`http://127.0.0.1:${port}/files/`));
  // A CSP, CORS or CORP refusal shows only on the console: put it in the failure.
  await side.waitForFunction(() => document.querySelector('#messages .attachments img[alt="side.png"]').naturalWidth === 3)
    .catch((e) => { throw new Error(`${e.message}; console: ${blocked.join(" / ")}`); });
  assert.deepEqual(blocked.filter((t) => /Content Security Policy|CORS|blocked/i.test(t)), []);
});
