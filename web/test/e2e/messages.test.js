// Replies and reactions between two pages in Debian's Chromium against a
// real iotad: one page replies and the other sees the quoted line; one
// reacts and the other sees the chip with its count.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, startIotad, launchChromium, loginWithKey, joinWith } from "./harness.js";

let srv, browser, ownerKey, friendKey;
const pages = {};

before(async () => {
  srv = await startIotad();
  ownerKey = readFileSync(join(srv.data, "owner.tu"), "utf8");
  execFileSync(bin, ["user", "add", "--data", srv.data, "--name", "friend", "--out", join(srv.data, "friend.tu")]);
  friendKey = readFileSync(join(srv.data, "friend.tu"), "utf8");
  browser = await launchChromium();
  for (const [name, key, invite, title] of [["owner", ownerKey, srv.invites[0], "Home"], ["friend", friendKey, srv.invites[1], "Friends"]]) {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const p = (pages[name] = await ctx.newPage());
    p.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
    await p.goto(srv.base + "/");
    await loginWithKey(p, key);
    await joinWith(p, invite, title);
    await p.click('#tree span:has-text("# general")');
    await p.waitForSelector("#composer:not([hidden])");
  }
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

async function send(p, text) {
  await p.fill("#message", text);
  await p.press("#message", "Enter");
  await p.waitForSelector(`#messages li:has-text(${JSON.stringify(text)})`);
}

const message = (p, text) => p.locator("#messages li.msg", { has: p.locator(".body", { hasText: text }) });

test("a reply shows the quoted line on the other page", async () => {
  const { owner, friend } = pages;
  await send(owner, "the question");
  await message(friend, "the question").waitFor();
  await message(friend, "the question").hover();
  await message(friend, "the question").locator('button[aria-label="Reply"]').click();
  assert.match(await friend.textContent("#reply-bar"), /Replying to/);
  await send(friend, "the answer");
  assert.equal(await friend.locator("#reply-bar").count(), 0);
  const quote = message(owner, "the answer").locator(".quote");
  await quote.waitFor();
  assert.match(await quote.textContent(), /the question/);
});

test("a reaction shows as a chip with its count on the other page", async () => {
  const { owner, friend } = pages;
  const target = message(friend, "the question");
  await target.hover();
  await target.locator('button[aria-label="Add reaction"]').click();
  await friend.locator(".emoji-picker .grid button").first().click();
  const chip = message(owner, "the question").locator(".chip");
  await chip.waitFor();
  assert.match(await chip.textContent(), / 1$/);
  assert.equal(await chip.getAttribute("aria-pressed"), "false");
  const mine = message(friend, "the question").locator(".chip");
  await mine.waitFor();
  assert.equal(await mine.getAttribute("aria-pressed"), "true");
  // The owner's click on the chip adds theirs: 2 on both pages.
  await chip.click();
  await friend.waitForFunction(() => document.querySelector("#messages .chip")?.textContent.endsWith(" 2"));
});

test("a message that comes while a channel's first page loads shows once, after that page", async () => {
  const { friend } = pages;
  // The owner's second device, whose socket holds back its first
  // get_messages of general until the page has had a frame to draw a live
  // message of that channel: the page that then comes holds it too.
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  let hold;
  const held = new Promise((r) => (hold = r));
  let sawLive;
  const live = new Promise((r) => (sawLive = r));
  await ctx.routeWebSocket(() => true, (ws) => {
    const server = ws.connectToServer();
    let holding = true;
    ws.onMessage((m) => {
      const d = typeof m === "string" ? JSON.parse(m).data : null;
      if (holding && d?.function === "get_messages" && d.name === "general" && d.payload?.loaded_messages === 0) {
        holding = false;
        hold(() => server.send(m));
      } else server.send(m);
    });
    server.onMessage((m) => {
      ws.send(m);
      if (typeof m === "string" && m.includes("message_live") && m.includes("said while loading")) sawLive();
    });
  });
  const laptop = await ctx.newPage();
  laptop.on("pageerror", (e) => console.error("[laptop] page error:", e.message));
  await laptop.goto(srv.base + "/");
  await loginWithKey(laptop, ownerKey);
  await laptop.click('#community-list li:has-text("Home")');
  await laptop.click('#tree span:has-text("# general")');
  const release = await held;
  await send(friend, "said while loading");
  await live;
  await laptop.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  release();
  await message(laptop, "the question").waitFor();
  assert.equal(await message(laptop, "said while loading").count(), 1);
  assert.equal(await laptop.locator("#messages li.msg .body").last().textContent(), "said while loading");
  await ctx.close();
});
