// The web client end to end, in Debian's Chromium, against a real iotad on
// a random port: people join with invites, chat both ways, see each other
// live, a moderator deletes, two people talk, and the server never sees a
// plaintext community address.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { bin, shots, startIotad, launchChromium, newPage, loginWithKey, joinWith, openJoin } from "./harness.js";

let srv, base, data, invites, ownerKey, browser;

before(async () => {
  srv = await startIotad();
  ({ base, data, invites } = srv);
  ownerKey = readFileSync(join(data, "owner.tu"), "utf8");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

const page = (name) => newPage(browser, base, name);

async function openGeneral(p) {
  await p.click('#tree span:has-text("# general")');
  await p.waitForSelector("#composer:not([hidden])");
}

async function send(p, text) {
  await p.fill("#message", text);
  await p.press("#message", "Enter");
}

const pages = {};

test("the page loads small and fast", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const p = await ctx.newPage();
  let bytes = 0;
  const cdp = await ctx.newCDPSession(p);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  cdp.on("Network.loadingFinished", (e) => (bytes += e.encodedDataLength));
  const t0 = Date.now();
  await p.goto(base + "/", { waitUntil: "load" });
  await p.waitForSelector("#login:not([hidden])");
  const ms = Date.now() - t0;
  console.log(`first load: ${bytes} bytes transferred, interactive in ${ms} ms`);
  assert.ok(bytes < 300 * 1024, `first load transferred ${bytes} bytes`);
  await p.screenshot({ path: join(shots, "login.png") });
  await p.context().close();
});

test("two people join with invites and chat both ways", async () => {
  const owner = (pages.owner = await page("owner"));
  await loginWithKey(owner, ownerKey);
  await joinWith(owner, invites[0], "Home");
  await openGeneral(owner);
  await send(owner, "hello from the owner");
  await owner.waitForSelector('#messages li:has-text("hello from the owner")');

  // The friend makes a key with a registration token.
  const token = execFileSync(bin, ["token", "create", "--data", data, "--uses", "1"]).toString().trim();
  const friend = (pages.friend = await page("friend"));
  await friend.click("summary");
  await friend.fill("#token", token);
  await friend.click("#register-button");
  await friend.waitForSelector("#app:not([hidden])");
  await joinWith(friend, invites[1], "Friends");
  await openGeneral(friend);
  await friend.waitForSelector('#messages li:has-text("hello from the owner")');
  await friend.type("#message", "hi o");
  await owner.waitForFunction(() => document.getElementById("typing").textContent.includes("is typing"));
  await friend.fill("#message", "");
  await send(friend, "hi owner");
  await owner.waitForSelector('#messages li:has-text("hi owner")');
  await owner.screenshot({ path: join(shots, "channel.png") });
});

test("another device of the same user sees the list change live", async () => {
  const laptop = (pages.laptop = await page("laptop"));
  await loginWithKey(laptop, ownerKey);
  await laptop.waitForSelector('#community-list li:has-text("Home")');
  await joinWith(pages.owner, invites[1], "Second entry");
  await laptop.waitForSelector('#community-list li:has-text("Second entry")');
  await joinWith(pages.owner, invites[1], "Third entry");
  await laptop.click('#community-list li:has-text("Third entry") button');
  await pages.owner.waitForSelector('#community-list li:has-text("Third entry")', { state: "detached" });
});

test("a moderator deletes a message and the other page drops it", async () => {
  const { owner, friend } = pages;
  await owner.click('#community-list li:has-text("Home")');
  await openGeneral(owner);
  await owner.waitForSelector('#messages li:has-text("hi owner")');
  await friend.waitForSelector('#messages li:has-text("hi owner")');
  await owner.click('#messages li:has-text("hi owner") button:has-text("delete")');
  await friend.waitForSelector('#messages li:has-text("hi owner")', { state: "detached" });
});

async function inboundBytes(p) {
  return p.evaluate(async () => {
    // The page keeps its call in a module; find the peer connection via
    // the audio elements' streams is not possible, so ask getStats of all.
    const pcs = window.__iotadCalls || [];
    let total = 0;
    for (const pc of pcs) {
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "audio") total += r.bytesReceived;
      });
    }
    return total;
  });
}

test("two people talk in a voice channel", async () => {
  const { owner, friend } = pages;
  for (const p of [owner, friend]) {
    await p.click('#tree span:has-text("voice")');
    await p.waitForSelector("#call:not([hidden])");
  }
  for (const p of [owner, friend]) {
    let before = -1, now = 0;
    for (let i = 0; i < 100 && !(before >= 0 && now > before && now > 2000); i++) {
      before = now;
      await p.waitForTimeout(200);
      now = await inboundBytes(p);
    }
    if (now <= 2000) {
      console.log(await p.evaluate(async () => {
        const out = [];
        for (const pc of window.__iotadCalls || []) {
          out.push(`ice=${pc.iceConnectionState} conn=${pc.connectionState} sig=${pc.signalingState}`);
          (await pc.getStats()).forEach((r) => {
            if (r.type === "local-candidate" || r.type === "remote-candidate") out.push(`${r.type} ${r.candidateType} ${r.address}:${r.port} ${r.protocol}`);
            if (r.type === "candidate-pair") out.push(`pair ${r.state} nominated=${r.nominated}`);
          });
        }
        return out.join("\n");
      }));
      console.log(srv.log.split("\n").filter((l) => /call|peer|renegotiat|track|WARN|ERROR/.test(l)).join("\n"));
    }
    assert.ok(now > 2000, `inbound audio bytes ${now}`);
  }
  for (const p of [owner, friend]) {
    await p.waitForFunction(() => document.querySelectorAll(".voice-users li").length === 2);
    // Chromium's fake microphone beeps: the audio level lights the speaker up.
    await p.waitForSelector(".voice-users li.speaking");
  }
  await owner.screenshot({ path: join(shots, "voice.png") });
});

test("a screen share reaches a watcher", async () => {
  const { owner, friend } = pages;
  await owner.click("#share");
  await owner.waitForSelector('#share:has-text("Stop sharing")');
  await friend.waitForSelector('.voice-users button:has-text("watch")');
  await friend.click('.voice-users button:has-text("watch")');
  await friend.waitForFunction(() => {
    const v = document.querySelector("#screens video");
    return v && v.videoWidth > 0;
  }, null, { timeout: 20000 });
  await friend.screenshot({ path: join(shots, "screen-share.png") });
  await owner.click("#share");
});

test("unread marks for channels one is not looking at", async () => {
  const { owner, friend } = pages;
  await owner.click("#admin-button");
  await owner.fill('#admin input[aria-label="Channel name"]', "random");
  await owner.fill('#admin input[aria-label="Category path"]', "General");
  await owner.click('#admin button:has-text("Create")');
  await friend.waitForSelector('#tree span:has-text("# random")');
  await openGeneral(owner);
  await friend.click('#tree span:has-text("# random")');
  await send(friend, "over here");
  await owner.waitForSelector('#tree li.unread span:has-text("# random")');
  await owner.click('#tree span:has-text("# random")');
  await owner.waitForSelector('#messages li:has-text("over here")');
  assert.equal(await owner.locator("#tree li.unread").count(), 0);
});

test("10,000 messages scroll without loading them all", async () => {
  const { owner } = pages;
  // The flood is the owner's own, so it changes no count the tree shows,
  // and the tree must not be redrawn for its messages or read marks (it
  // was, 3,844 times in one run); what else changes meanwhile (a call of
  // an earlier test) may redraw it.
  await owner.evaluate(() => {
    window.treeRedraws = 0;
    new MutationObserver(() => window.treeRedraws++).observe(document.getElementById("tree"), { childList: true });
  });
  // Fill the channel from inside the page with the page's own crypto.
  await owner.evaluate(async ([keyText, invite]) => {
    const c = await import("/crypto.js");
    const pinned = new URL(invite.replace("tensamin:", "http:")).searchParams.get("key");
    const me = c.parseKeyFile(keyText);
    const ws = new WebSocket(`ws://${location.host}/`);
    await new Promise((r) => (ws.onopen = r));
    const replies = new Map();
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      replies.get(m.id)?.(m);
    };
    const req = (type, data) => new Promise((r) => {
      const id = crypto.randomUUID();
      replies.set(id, r);
      ws.send(JSON.stringify({ type, id, data }));
    });
    const ch = await req("identification", { user_id: me.userID });
    const { answer } = await c.answerChallenge(me.privateKey, me.userID, ch.data, { role: "community", pinned });
    await req("challenge_response", { challenge: answer });
    for (let i = 0; i < 10000; i++) {
      ws.send(JSON.stringify({ type: "function", data: { codec: "text", path: "General", name: "random", function: "send_message", payload: { message: `flood ${i}` } } }));
    }
    await req("function", { codec: "text", path: "General", name: "random", function: "get_messages", payload: { amount: 1 } });
    ws.close();
  }, [ownerKey, invites[0]]);
  // By now the page has taken most of the flood's live updates; two
  // frames later any redraw they asked for would have run.
  await owner.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const redraws = await owner.evaluate(() => window.treeRedraws);
  assert.ok(redraws < 100, `the tree was redrawn ${redraws} times during the flood`);
  await owner.click('#tree span:has-text("# general")');
  await owner.waitForSelector("#composer:not([hidden])");
  await owner.click('#tree span:has-text("# random")');
  await owner.waitForSelector('#messages li:has-text("flood 9999")');
  for (let i = 0; i < 12; i++) {
    const first = await owner.locator("#messages li").first().getAttribute("data-id");
    await owner.evaluate(() => { const m = document.getElementById("messages"); m.scrollTop = 0; m.dispatchEvent(new Event("scroll")); });
    await owner.waitForFunction((f) => document.querySelector("#messages li")?.dataset.id !== f, first);
  }
  const nodes = await owner.locator("#messages li").count();
  assert.ok(nodes <= 300, `${nodes} message nodes in the page`);
  const oldest = await owner.locator("#messages li .body").first().textContent();
  assert.ok(Number(oldest.split(" ")[1]) < 9400, `after 12 pages up the oldest shown is ${oldest}`);
});

test("errors are shown in words", async () => {
  // A newcomer tries the owner invite, which was bound to the owner and spent.
  const token = execFileSync(bin, ["token", "create", "--data", data, "--uses", "1"]).toString().trim();
  const p = await page("newcomer");
  await p.click("summary");
  await p.fill("#token", token);
  await p.click("#register-button");
  await p.waitForSelector("#app:not([hidden])");
  await openJoin(p);
  await p.fill("#invite", invites[0]);
  await p.click("#add-community button");
  await p.waitForFunction(() => document.getElementById("status").textContent.includes("That invite does not work"));
  await p.context().close();
});

test("the page reconnects after the server restarts and resumes the channel", async () => {
  const { owner, friend } = pages;
  await owner.click('#community-list li:has-text("Home")');
  await openGeneral(owner);
  await friend.click('#tree span:has-text("# general")');
  await srv.stop();
  await owner.waitForFunction(() => document.getElementById("status").textContent.includes("reconnecting"));
  await srv.start();
  await friend.waitForFunction(() => !document.getElementById("status").textContent.includes("reconnecting"), null, { timeout: 30000 });
  await owner.waitForFunction(() => !document.getElementById("status").textContent.includes("reconnecting"), null, { timeout: 30000 });
  await send(friend, "after the restart");
  await owner.waitForSelector('#messages li:has-text("after the restart")');
});

test("a phone-sized screen and the keyboard alone", async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const p = await ctx.newPage();
  await p.goto(base + "/");
  await p.waitForSelector("#login:not([hidden])");
  await p.focus("#keytext");
  await p.keyboard.type(ownerKey.trim());
  await p.keyboard.press("Tab"); // the remember box
  await p.keyboard.press("Tab"); // the button
  await p.keyboard.press("Enter");
  await p.waitForSelector("#app:not([hidden])");
  await p.focus('#community-list li:has-text("Home")');
  await p.keyboard.press("Enter");
  await p.waitForSelector('#tree span:has-text("# general")');
  await p.focus('#tree span:has-text("# general")');
  await p.keyboard.press("Enter");
  await p.waitForSelector("#composer:not([hidden])");
  // Opening a channel puts the focus in the composer once its history is in.
  await p.waitForFunction(() => document.activeElement?.id === "message");
  await p.keyboard.type("typed on a phone");
  await p.keyboard.press("Enter");
  await p.waitForSelector('#messages li:has-text("typed on a phone")');
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await p.screenshot({ path: join(shots, "phone.png"), fullPage: true });
  await ctx.close();
});

test("the administration view", async () => {
  const { owner } = pages;
  await owner.click("#admin-button");
  await owner.waitForSelector("#admin:not([hidden]) table");
  await owner.click('#admin button:has-text("Create invite")');
  await owner.waitForFunction(() => document.querySelector(".invite-link")?.value.startsWith("tensamin://"));
  // Rename, move and delete a channel through the page's dialogs.
  const answers = ["renamed", "", "ok"];
  owner.on("dialog", (d) => d.accept(answers.shift()));
  const row = (name) => `#admin tr:has(td:text-is("${name}"))`;
  await owner.click(`${row("General/random")} button:has-text("rename")`);
  await owner.waitForSelector(row("General/renamed"));
  await owner.click(`${row("General/renamed")} button:has-text("move")`);
  await owner.waitForSelector(row("renamed"));
  await owner.click(`${row("renamed")} button:has-text("delete")`);
  await owner.waitForSelector(row("renamed"), { state: "detached" });
  await pages.friend.waitForSelector('#tree span:has-text("renamed")', { state: "detached" });
  await owner.screenshot({ path: join(shots, "admin.png") });
});

test("no plaintext community address reached the server", async () => {
  // The owner's entries name the community by host and port; the server
  // stores only their sealed form.
  const needle = new URL(invites[0].replace("tensamin:", "http:")).host;
  const marker = `tensamin://${needle}/?key=`;
  for (const f of ["iotad.db", "iotad.db-wal"]) {
    const path = join(data, f);
    if (existsSync(path)) assert.ok(!readFileSync(path).includes(marker), `${f} holds a plaintext address`);
  }
  assert.ok(!srv.log.includes(marker), "the log holds a plaintext address");
  assert.ok(srv.log.includes("iota login"), "control: the log was captured");
});
