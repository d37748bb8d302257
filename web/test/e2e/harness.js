// What the browser tests share: a real iotad on random loopback ports,
// Debian's Chromium, and the page's login and join steps.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

export const bin = process.env.IOTAD_BIN;
export const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
export const shots = process.env.SCREENSHOTS || join(tmpdir(), "iotad-screenshots");
mkdirSync(shots, { recursive: true });

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// startIotad serves a fresh data directory. The returned server can be
// stopped and started again on the same ports and data, and removed at
// the end; invites are the ones printed by its first start, log is
// everything it wrote to stderr.
// extra are more serve flags (e.g. --tls-cert); base is then https.
export async function startIotad(extra = []) {
  assert.ok(bin, "IOTAD_BIN must name the iotad binary");
  const data = mkdtempSync(join(tmpdir(), "iotad-e2e-"));
  const addr = `127.0.0.1:${await freePort()}`;
  // Chromium gathers no loopback candidates, and tests may only use
  // loopback: media goes through the embedded TURN server on 127.0.0.1.
  const turn = `127.0.0.1:${await freePort()}`;
  const srv = { data, addr, base: `http://${addr}`, invites: [], log: "", proc: null };
  srv.start = () => {
    // The request rate is lifted so a test can fill a channel quickly.
    const proc = (srv.proc = spawn(bin, ["serve", "--data", data, "--addr", addr, "--media-addr", addr, "--turn-addr", turn, "--admin-addr", "",
      "--request-rate", "100000", "--request-burst", "100000", "--user-request-rate", "100000", "--user-request-burst", "100000", "--send-queue", "20000", "--log-level", "debug", ...extra]));
    proc.stderr.on("data", (d) => (srv.log += d));
    return new Promise((resolve, reject) => {
      let out = "";
      proc.stdout.on("data", (d) => {
        out += d;
        if (out.includes("iotad is listening")) {
          // stdout is a pipe, not a terminal, so the first start writes its
          // invites to a 0600 file in the data directory instead.
          const file = join(data, "first-invites.txt");
          const text = existsSync(file) ? readFileSync(file, "utf8") : out;
          if (!srv.invites.length) srv.invites = text.split("\n").filter((l) => l.startsWith("tensamin://"));
          resolve();
        }
      });
      proc.on("exit", (code) => reject(new Error(`iotad exited with ${code}`)));
    });
  };
  srv.stop = () => new Promise((resolve) => {
    if (!srv.proc || srv.proc.exitCode !== null) return resolve();
    srv.proc.once("exit", resolve);
    srv.proc.kill();
  });
  // remove stops the server for good and deletes its data, keys included.
  srv.remove = async () => {
    await srv.stop();
    rmSync(data, { recursive: true, force: true });
  };
  await srv.start();
  return srv;
}

export function launchChromium() {
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}`);
  return chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required", "--auto-select-desktop-capture-source=Entire screen", "--auto-accept-this-tab-capture"],
  });
}

// newPage opens the page in a context of its own (its own IndexedDB, so
// its own remembered key and pins) unless ctx is given.
export async function newPage(browser, base, name, ctx) {
  ctx ||= await browser.newContext({ permissions: ["microphone"], viewport: { width: 1100, height: 700 } });
  const p = await ctx.newPage();
  p.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  await p.goto(base + "/");
  return p;
}

export async function loginWithKey(p, keyText) {
  await p.fill("#keytext", keyText);
  await p.click("#login-button");
  // A failed login says why on the status line: put that in the failure.
  await p.waitForSelector("#app:not([hidden])").catch(async (err) => {
    throw new Error(`login: ${err.message}; the page says: ${await p.textContent("#status")}`);
  });
}

// openJoin opens the join panel by the rail's + button, unless it is
// open already (it opens by itself while the list is empty).
export async function openJoin(p) {
  if (!(await p.isVisible("#invite"))) await p.click("#join-button");
  await p.waitForSelector("#invite", { state: "visible" });
}

export async function joinWith(p, invite, title) {
  await openJoin(p);
  await p.fill("#invite", invite);
  await p.fill("#title", title);
  await p.click("#add-community button");
  await p.waitForSelector(`#community-list li:has-text("${title}")`);
  await p.waitForSelector('#tree span:has-text("general")');
}

// registerPage opens a page for a new Iota user of srv, registered with
// a one-use token the CLI makes: the friend of most tests.
export async function registerPage(browser, srv, name) {
  const token = execFileSync(bin, ["token", "create", "--data", srv.data, "--uses", "1"]).toString().trim();
  const p = await newPage(browser, srv.base, name);
  await p.click("summary");
  await p.fill("#token", token);
  await p.click("#register-button");
  await p.waitForSelector("#app:not([hidden])");
  return p;
}

// statusSays waits until the page's status line holds text.
export function statusSays(p, text) {
  return p.waitForFunction((t) => document.getElementById("status").textContent.includes(t), text);
}
