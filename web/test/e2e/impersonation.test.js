// Servers that are not who they say, against the page's login version 2
// (PROTOCOL §3): a malicious community C relays the challenge of community
// A or of the user's Iota to the page, hoping the page answers so that C can
// log in there as the user; an Iota whose key is not the pinned one. In
// every case the page must refuse before it answers, and say so in words.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WebSocketServer, WebSocket } from "ws";
import { shots, startIotad, launchChromium, newPage, loginWithKey, joinWith, openJoin, statusSays } from "./harness.js";

let srv, browser, ownerKey, owner;
// A test that hangs fails instead, with whatever it was waiting for.
const timeout = 60000;

before(async () => {
  srv = await startIotad();
  ownerKey = readFileSync(join(srv.data, "owner.tu"), "utf8");
  browser = await launchChromium();
  // The owner is a member of A (the server's community) and has an Iota
  // account there: what the relay will try to log in to.
  owner = await newPage(browser, srv.base, "owner");
  await loginWithKey(owner, ownerKey);
  await joinWith(owner, srv.invites[0], "Home");
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

// within fails a wait that takes longer than ms, instead of hanging.
function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// startRelay is community C: its own X448 key and invite, and behind them
// a socket to the real server (path "/" is A, "/ws/iota" the Iota) opened
// as the user who identifies to C. A's challenge is passed to the page
// with its server_key as A sent it, or replaced by C's ("C's key"); an
// answer from the page would go up, and so would the verdict come down.
async function startRelay(upstreamPath, serverKey) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const jwk = generateKeyPairSync("x448").publicKey.export({ format: "jwk" });
  const relay = {
    invite: `tensamin://127.0.0.1:${wss.address().port}/?invite=x&key=${jwk.x}`,
    upstreamPath, // may change between connections: C may turn
    // drop ends every socket to C, so that pages log in again.
    drop: () => wss.clients.forEach((ws) => ws.terminate()),
    challenges: 0, // challenges the real server issued to the relay
    answers: 0, // challenge_response frames the page sent to the relay
    verdicts: [], // identification_response frames the real server sent
    // The server's close waits for open sockets, so end them first.
    close: () => new Promise((resolve) => {
      relay.drop();
      wss.close(resolve);
    }),
  };
  relay.pageLeft = new Promise((resolve) => (relay.leave = resolve));
  // nextAnswer resolves when the page next answers through C.
  const waiting = [];
  relay.nextAnswer = () => new Promise((resolve) => waiting.push(resolve));
  wss.on("connection", (page) => {
    const ids = {};
    const up = new WebSocket(`ws://${srv.addr}${relay.upstreamPath}`);
    up.on("error", () => page.close());
    const toPage = (m) => page.send(JSON.stringify(m));
    const toServer = (m) => up.readyState === WebSocket.OPEN && up.send(JSON.stringify(m));
    up.on("message", (raw) => {
      const m = JSON.parse(raw);
      if (m.type === "challenge") {
        relay.challenges++;
        if (serverKey === "C's key") m.data.server_key = Buffer.from(jwk.x, "base64url").toString("base64");
        m.id = ids.identification;
      } else if (m.type === "identification_response") {
        relay.verdicts.push(m.data);
        m.id = ids.challenge_response;
      }
      toPage(m);
    });
    page.on("message", async (raw) => {
      const m = JSON.parse(raw);
      ids[m.type] = m.id;
      if (m.type === "identification") {
        if (up.readyState === WebSocket.CONNECTING) await once(up, "open");
        toServer({ type: "identification", id: "relayed-identification", data: { user_id: m.data.user_id } });
      } else if (m.type === "challenge_response") {
        relay.answers++;
        waiting.splice(0).forEach((resolve) => resolve());
        toServer({ type: "challenge_response", id: "relayed-answer", data: m.data });
      }
    });
    page.on("close", () => {
      up.close();
      relay.leave();
    });
  });
  return relay;
}

const refusal = "This server is not the community in your invite — it may be trying to impersonate it";

for (const [target, path] of [["community A", "/"], ["the Iota", "/ws/iota"]]) {
  for (const [serverKey, why] of [["as sent", "Its key is not the one in your invite."], ["C's key", "Its challenge was made for another server."]]) {
    test(`TestRelayedChallengeIsRefused: C relays ${target}'s challenge with server_key ${serverKey}`, { timeout }, async () => {
      const relay = await startRelay(path, serverKey);
      try {
        const answered = relay.nextAnswer().then(() => assert.fail("the page answered the relayed challenge"));
        await owner.evaluate(() => (document.getElementById("status").textContent = ""));
        await openJoin(owner);
        await owner.fill("#invite", relay.invite);
        await owner.fill("#title", "Relay C");
        await owner.click("#add-community button");
        await Promise.race([statusSays(owner, refusal), answered]);
        assert.ok((await owner.textContent("#status")).includes(why), await owner.textContent("#status"));
        if (target === "community A" && serverKey === "as sent") await owner.screenshot({ path: join(shots, "relay-refused.png") });
        // The page closes its socket to C when it refuses: after that it
        // can send nothing more, so the counts below are final.
        await within(10000, relay.pageLeft, "the page leaving C");
        assert.equal(relay.challenges, 1, `control: ${target} issued the challenge that C relayed`);
        assert.equal(relay.answers, 0, "the page answered the relayed challenge");
        assert.deepEqual(relay.verdicts, [], `${target} logged C in as the user`);
        assert.equal(await owner.locator('#community-list li:has-text("Relay C")').count(), 0, "C was added to the list");
      } finally {
        await relay.close();
      }
    });
  }
}

test("TestJoinedCommunityTurnedRelayIsRefused: C passes A through honestly, is joined, then relays the Iota's challenge", { timeout }, async () => {
  // The first half is the control the tests above need: the relay does
  // get a page in when the page answers.
  const relay = await startRelay("/", "as sent");
  try {
    const aKey = new URL(srv.invites[0].replace("tensamin:", "http:")).searchParams.get("key");
    const invite = relay.invite.replace(/key=.*$/, `key=${aKey}`);
    await joinWith(owner, invite, "A through the relay");
    assert.ok(relay.answers >= 1, "control: the page answered A's challenge");
    assert.equal(relay.verdicts[0]?.accepted, true, "control: A accepted the answer");
    // C turns: the page's next login, a reconnect with the key pinned in
    // its Iota entry, meets the Iota's challenge.
    const { answers, verdicts } = { answers: relay.answers, verdicts: relay.verdicts.length };
    const challenges = relay.challenges;
    relay.upstreamPath = "/ws/iota";
    await owner.evaluate(() => (document.getElementById("status").textContent = ""));
    relay.drop();
    const answered = relay.nextAnswer().then(() => assert.fail("the page answered the relayed challenge"));
    await Promise.race([statusSays(owner, "This server is not the community you joined — it may be trying to impersonate it"), answered]);
    assert.ok((await owner.textContent("#status")).includes("Its key is not the one in your invite."), await owner.textContent("#status"));
    assert.ok(relay.challenges > challenges, "control: the Iota issued the challenge that C relayed");
    assert.equal(relay.answers, answers, "the page answered the relayed challenge");
    assert.equal(relay.verdicts.length, verdicts, "the Iota logged C in as the user");
  } finally {
    await relay.close();
  }
});

// The owner's key without any iota_key line, so the page pins on first use.
const tensaminLine = () => ownerKey.split(/\r?\n/)[0];
const anotherKey = () => generateKeyPairSync("x448").publicKey.export({ format: "jwk" }).x;

// framesTo records the frame types a page sends on sockets to the Iota,
// and resolves left when such a socket closes.
function framesTo(p) {
  const sent = [];
  let left;
  const closed = new Promise((resolve) => (left = resolve));
  p.on("websocket", (ws) => {
    if (!ws.url().endsWith("/ws/iota")) return;
    ws.on("framesent", (f) => sent.push(JSON.parse(f.payload).type));
    ws.on("close", left);
  });
  return { sent, closed };
}

test("TestIotaKeyFromKeyFileIsEnforced: an Iota that is not the key file's iota_key gets no answer", { timeout }, async () => {
  const ctx = await browser.newContext();
  try {
    const p = await ctx.newPage();
    const frames = framesTo(p);
    await p.goto(srv.base + "/");
    await p.fill("#keytext", `${tensaminLine()}\niota_key=${anotherKey()}\n`);
    await p.click("#login-button");
    await statusSays(p, "This server is not your Iota — it may be trying to impersonate it");
    assert.ok((await p.textContent("#status")).includes("Its key is not the one in your key file."));
    await within(10000, frames.closed, "the page closing its Iota socket");
    assert.deepEqual(frames.sent, ["identification"]);
    assert.ok(await p.isHidden("#app"), "the page opened the Iota anyway");
  } finally {
    await ctx.close();
  }
});

test("TestChangedIotaKeyIsRefused: after first use, another key (or login version 1) at the Iota's URL gets no answer", { timeout }, async () => {
  const ctx = await browser.newContext();
  try {
    // First use: the page pins the Iota's key and remembers the user's key.
    const first = await ctx.newPage();
    await first.goto(srv.base + "/");
    await loginWithKey(first, tensaminLine());
    await first.close();
    // From now on a man in the middle stands at the Iota's URL and
    // changes its challenges; the page logs in by itself with the
    // remembered key.
    let change;
    const routed = [];
    await ctx.routeWebSocket(/\/ws\/iota$/, (ws) => {
      const server = ws.connectToServer();
      const sock = { sent: [] };
      sock.closed = new Promise((resolve) => ws.onClose(resolve));
      routed.push(sock);
      ws.onMessage((raw) => {
        sock.sent.push(JSON.parse(raw).type);
        server.send(raw);
      });
      server.onMessage((raw) => {
        const m = JSON.parse(raw);
        if (m.type === "challenge") Object.assign(m.data, change());
        ws.send(JSON.stringify(m));
      });
    });
    const cases = [
      [() => ({ server_key: Buffer.from(anotherKey(), "base64url").toString("base64") }), "Its key has changed since this browser first used it."],
      [() => ({ login_version: 1 }), "It asked for an old kind of login that another server could relay."],
    ];
    for (const [how, why] of cases) {
      change = how;
      const p = await ctx.newPage();
      await p.goto(srv.base + "/");
      await statusSays(p, "This server is not your Iota — it may be trying to impersonate it");
      assert.ok((await p.textContent("#status")).includes(why), await p.textContent("#status"));
      const sock = routed.at(-1);
      await within(10000, sock.closed, "the page closing its Iota socket");
      assert.deepEqual(sock.sent, ["identification"], "the page answered a changed Iota");
      await p.close();
    }
    // Control: with the challenge left alone, the same route logs in.
    change = () => ({});
    const p = await ctx.newPage();
    await p.goto(srv.base + "/");
    await p.waitForSelector("#app:not([hidden])");
    assert.ok(routed.at(-1).sent.includes("challenge_response"), "control: the route carried the login");
  } finally {
    await ctx.close();
  }
});
