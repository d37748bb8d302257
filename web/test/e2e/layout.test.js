// The page as a product, in Debian's Chromium against a real iotad: the
// four columns, messages grouped by author with dates between days, made-up
// names and avatars, the member column, both themes, nothing overflowing
// its column, the emoji picker, notifications and a phone-sized screen.
// Screenshots for docs/screenshots/ are taken here.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, shots, startIotad, launchChromium, loginWithKey, joinWith, openJoin, statusSays } from "./harness.js";

let srv, browser, ownerKey, friendKey;
const pages = {};

before(async () => {
  srv = await startIotad();
  ownerKey = readFileSync(join(srv.data, "owner.tu"), "utf8");
  execFileSync(bin, ["user", "add", "--data", srv.data, "--name", "friend", "--out", join(srv.data, "friend.tu")]);
  friendKey = readFileSync(join(srv.data, "friend.tu"), "utf8");
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await srv?.remove();
});

// A context in a fixed locale and time zone, so the test can say what the
// times and dates must read.
const LOCALE = "de-DE", ZONE = "Europe/Berlin";
// Whatever the strict CSP refused on any page of this file (an inline
// style, a fetched font): the last test says none was.
const refused = [];
async function open(name, { width = 1100, height = 700, colorScheme = "light", permissions = [] } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, locale: LOCALE, timezoneId: ZONE, colorScheme, permissions });
  const p = await ctx.newPage();
  p.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
  p.on("console", (m) => /Content Security Policy/.test(m.text()) && refused.push(`[${name}] ${m.text()}`));
  await p.goto(srv.base + "/");
  return p;
}

async function send(p, text) {
  await p.fill("#message", text);
  await p.press("#message", "Enter");
  await p.waitForSelector(`#messages li:has-text(${JSON.stringify(text)})`);
}

async function openGeneral(p) {
  await p.click('#tree span:has-text("# general")');
  await p.waitForSelector("#composer:not([hidden])");
}

// box is an element's bounding box in CSS pixels.
const box = (p, sel) => p.locator(sel).first().evaluate((e) => e.getBoundingClientRect().toJSON());
const inside = (inner, outer, what) => {
  assert.ok(inner.left >= outer.left - 0.5 && inner.right <= outer.right + 0.5,
    `${what}: ${inner.left}..${inner.right} is not inside ${outer.left}..${outer.right}`);
};

test("four columns: communities, channels, messages, members", async () => {
  const owner = (pages.owner = await open("owner"));
  await loginWithKey(owner, ownerKey);
  await joinWith(owner, srv.invites[0], "Home");
  const friend = (pages.friend = await open("friend"));
  await loginWithKey(friend, friendKey);
  await joinWith(friend, srv.invites[1], "Friends");
  // Until a channel is open, its column says what to do.
  assert.equal(await owner.textContent("#empty"), "Pick a text channel to read it, or a voice channel to join it.");
  for (const p of [owner, friend]) await openGeneral(p);
  assert.ok(await owner.isHidden("#empty"));
  const [rail, channels, channel, members] = await Promise.all([".rail", ".channels", ".channel", ".members"].map((s) => box(owner, s)));
  assert.ok(rail.right <= channels.left + 0.5 && channels.right <= channel.left + 0.5 && channel.right <= members.left + 0.5, "the columns are side by side, in order");
  assert.ok(channel.width > 400, `the message column is ${channel.width}px wide`);
  // The rail shows a community as an icon with its initial, named for
  // screen readers and in its tooltip.
  assert.equal(await owner.textContent("#community-list li .avatar"), "H");
  assert.equal(await owner.getAttribute("#community-list li", "title"), "Home");
});

test("members are shown by role with made-up names and avatars, the same on every page", async () => {
  const { owner, friend } = pages;
  const friendID = friendKey.split("::")[0].trim();
  const ownerID = ownerKey.split("::")[0].trim();
  // The server does not push joins or presence yet: the owner's list,
  // loaded before the friend joined, learns of them when they speak.
  await send(friend, "my name is made up");
  await owner.waitForSelector(`#member-list li[data-user="${friendID}"]`);
  // The owner is under "Owner", the friend under "Members", both online.
  const heads = await owner.locator("#member-list h3").allTextContents();
  assert.deepEqual(heads, ["Owner — 1", "Members — 1"]);
  assert.equal(await owner.getAttribute(`#member-list li[data-user="${ownerID}"]`, "data-role"), "owner");
  assert.equal(await owner.getAttribute(`#member-list li[data-user="${friendID}"]`, "class"), "online");
  assert.equal(await owner.textContent("#members-title"), "Members — 2 online");
  // A name of two words, not the front of a UUID, and the same in the
  // friend's own page, the owner's member list and the friend's messages.
  const nameThere = await owner.textContent(`#member-list li[data-user="${friendID}"] .name`);
  assert.match(nameThere, /^[A-Z][a-z]+ [A-Z][a-z]+$/);
  assert.ok(!nameThere.includes(friendID.slice(0, 8)));
  assert.equal(await friend.textContent("#me-person .name"), nameThere);
  assert.equal(await friend.textContent(`#member-list li[data-user="${friendID}"] .name`), `${nameThere} (you)`);
  const initials = nameThere.split(" ").map((w) => w[0]).join("");
  assert.equal(await owner.textContent(`#member-list li[data-user="${friendID}"] .avatar`), initials);
  // The avatar's colour comes from the id: the same on both pages.
  const hue = (p) => p.getAttribute(`#member-list li[data-user="${friendID}"] .avatar`, "class");
  assert.equal(await hue(owner), await hue(friend));
  assert.equal(await owner.textContent('#messages li:has-text("my name is made up") .who'), nameThere);
});

test("a member who is not connected is listed as offline", async () => {
  const ctx = pages.friend.context();
  await ctx.close();
  // Presence is not pushed by the server yet: a new page load asks again.
  const again = await open("owner again");
  await loginWithKey(again, ownerKey);
  await again.click('#community-list li:has-text("Home")');
  const friendID = friendKey.split("::")[0].trim();
  await again.waitForSelector(`#member-list li.offline[data-user="${friendID}"]`);
  assert.equal(await again.textContent("#members-title"), "Members — 1 online");
  await again.context().close();
  pages.friend = await open("friend");
  await loginWithKey(pages.friend, friendKey);
  await pages.friend.click('#community-list li:has-text("Friends")');
  await openGeneral(pages.friend);
});

test("messages of one author are grouped, with a date between days, in the reader's locale", async () => {
  const { owner, friend } = pages;
  for (const t of ["old one", "old two"]) await send(owner, t);
  await send(owner, "today one");
  await send(owner, "today two");
  await send(friend, "friend between");
  await send(owner, "today three");
  // Everything before "today one" two days back, written into the store while the server is down, so
  // the page meets history that spans days as it would after a weekend.
  await srv.stop();
  execFileSync("sqlite3", [join(srv.data, "iotad.db"),
    "UPDATE messages SET send_time = send_time - 2*86400000 WHERE body IN ('my name is made up', 'old one', 'old two');"]);
  await srv.start();
  // The page reconnects and reloads the open channel by itself.
  await owner.waitForFunction(() => document.querySelectorAll("#messages li.newday").length === 2, null, { timeout: 30000 });
  const rows = await owner.locator("#messages li").evaluateAll((lis) => lis.map((li) => ({
    body: li.querySelector(".body").textContent,
    first: li.classList.contains("first"),
    newday: li.classList.contains("newday"),
    header: getComputedStyle(li.querySelector(".head")).display !== "none",
    day: getComputedStyle(li.querySelector(".day")).display !== "none" ? li.querySelector(".day").textContent : "",
    when: li.querySelector(".when").textContent,
    time: Number(li.dataset.time),
  })));
  const at = (body) => rows.find((r) => r.body === body);
  // The owner's run is cut by the day and by the friend, nothing else.
  assert.deepEqual(["old one", "old two", "today one", "today two", "friend between", "today three"].map((b) => at(b).first),
    [true, false, true, false, true, true]);
  for (const r of rows) assert.equal(r.header, r.first, `${r.body}: a header shows exactly where a run starts`);
  // Dates and times as a German reader in Berlin expects them.
  const day = new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, weekday: "long", year: "numeric", month: "long", day: "numeric" });
  const time = new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, hour: "numeric", minute: "2-digit" });
  const oldest = rows[0];
  assert.equal(oldest.body, "my name is made up");
  assert.equal(oldest.day, day.format(oldest.time));
  assert.equal(at("today one").day, day.format(at("today one").time));
  for (const b of ["old one", "old two", "today two"]) assert.equal(at(b).day, "", `no divider inside a day, before ${b}`);
  assert.equal(at("today two").when, time.format(at("today two").time));
  assert.match(oldest.day, /^(Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag), /);
  // Deleting the first of a run hands its header to the next.
  await owner.hover('#messages li:has-text("today one")');
  await owner.click('#messages li:has-text("today one") button:has-text("delete")');
  await owner.waitForSelector('#messages li.first:has-text("today two")');
  await owner.mouse.move(1, 1); // off the messages, so no toolbar shows in the picture
  await owner.screenshot({ path: join(shots, "channel-light.png") });
});

// contrast is the WCAG contrast ratio of two computed colours.
function contrastIn(p, fgSel, fgProp, bgSel, bgProp) {
  return p.evaluate(([fgSel, fgProp, bgSel, bgProp]) => {
    const rgb = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop].match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
    const [a, b] = [lum(rgb(fgSel, fgProp)), lum(rgb(bgSel, bgProp))];
    return { ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), bg: lum(rgb(bgSel, bgProp)) };
  }, [fgSel, fgProp, bgSel, bgProp]);
}

test("a dark theme follows prefers-color-scheme, and both themes have good contrast", async () => {
  const { owner } = pages;
  for (const scheme of ["light", "dark"]) {
    await owner.emulateMedia({ colorScheme: scheme });
    const text = await contrastIn(owner, ".messages .body", "color", ".channel", "backgroundColor");
    assert.ok(scheme === "dark" ? text.bg < 0.05 : text.bg > 0.9, `${scheme}: the message column's luminance is ${text.bg}`);
    assert.ok(text.ratio >= 7, `${scheme}: message text contrast ${text.ratio}`);
    const muted = await contrastIn(owner, '.tree li > [role="button"]:not(.on)', "color", ".channels", "backgroundColor");
    assert.ok(muted.ratio >= 4.5, `${scheme}: channel name contrast ${muted.ratio}`);
    const time = await contrastIn(owner, ".messages .when", "color", ".channel", "backgroundColor");
    assert.ok(time.ratio >= 4.5, `${scheme}: time contrast ${time.ratio}`);
    const avatar = await contrastIn(owner, ".messages .avatar", "color", ".messages .avatar", "backgroundColor");
    assert.ok(avatar.ratio >= 4.5, `${scheme}: initials contrast ${avatar.ratio}`);
  }
  await owner.screenshot({ path: join(shots, "channel-dark.png") });
  await owner.emulateMedia({ colorScheme: "light" });
});

test("inputs, long words and long names stay inside their column", async () => {
  const { owner } = pages;
  // A long channel name ends in an ellipsis rather than widening the column.
  const long = "a-channel-with-a-name-far-too-long-for-its-column-of-the-tree-xy";
  await owner.click("#admin-button");
  await owner.fill('#admin input[aria-label="Channel name"]', long);
  await owner.fill('#admin input[aria-label="Category path"]', "General");
  await owner.click('#admin button:has-text("Create")');
  const label = `#tree span:has-text("${long}")`;
  await owner.waitForSelector(label);
  inside(await box(owner, label), await box(owner, ".channels"), "the long channel name");
  assert.ok(await owner.locator(label).evaluate((e) => e.scrollWidth > e.clientWidth && getComputedStyle(e).textOverflow === "ellipsis"), "the long name is cut with an ellipsis");
  // The invite box, once it holds a link, in every width down to a phone.
  await owner.click('#admin button:has-text("Create invite")');
  await owner.waitForFunction(() => document.querySelector(".invite-link")?.value.startsWith("tensamin://"));
  for (const width of [1100, 800, 390]) {
    await owner.setViewportSize({ width, height: 700 });
    inside(await box(owner, ".invite-link"), await box(owner, ".channel"), `the invite box at ${width}px`);
    for (const sel of ['#admin input[aria-label="Category path"]', '#admin input[aria-label="Channel name"]']) inside(await box(owner, sel), await box(owner, ".channel"), `${sel} at ${width}px`);
    assert.ok(await owner.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `the page scrolls sideways at ${width}px`);
  }
  await owner.setViewportSize({ width: 1100, height: 700 });
  // The join panel's inputs.
  await openJoin(owner);
  await owner.fill("#invite", "tensamin://" + "x".repeat(400));
  for (const sel of ["#invite", "#title"]) inside(await box(owner, sel), await box(owner, "#join-panel"), sel);
  await owner.click("#join-cancel");
  // A word longer than the column wraps.
  await openGeneral(owner);
  const word = "https://example.org/" + "x".repeat(600);
  await send(owner, word);
  inside(await box(owner, `#messages li:has-text("${word}") .body`), await box(owner, "#messages"), "a long URL");
  assert.ok(await owner.evaluate(() => { const m = document.getElementById("messages"); return m.scrollWidth <= m.clientWidth; }), "the messages scroll sideways");
});

test("the emoji picker inserts into the composer, by mouse and by keyboard", async () => {
  const { owner, friend } = pages;
  await owner.fill("#message", "nice ");
  await owner.click("#emoji-button");
  await owner.waitForSelector('.emoji-picker[role="dialog"]');
  assert.equal(await owner.getAttribute("#emoji-button", "aria-expanded"), "true");
  await owner.screenshot({ path: join(shots, "emoji.png") });
  await owner.click('.emoji-picker button[aria-label="thumbs up"]');
  await owner.waitForSelector(".emoji-picker", { state: "detached" });
  assert.equal(await owner.inputValue("#message"), "nice 👍");
  // Keyboard only: the button, arrows to the third emoji, Enter; the
  // caret is where the emoji goes, and focus comes back to the composer.
  await owner.focus("#message");
  await owner.keyboard.press("End");
  await owner.keyboard.type(" and ");
  await owner.keyboard.press("Shift+Tab");
  assert.equal(await owner.evaluate(() => document.activeElement.id), "emoji-button");
  await owner.keyboard.press("Enter");
  await owner.waitForFunction(() => document.activeElement?.closest(".emoji-picker"));
  await owner.keyboard.press("ArrowRight");
  await owner.keyboard.press("ArrowRight");
  assert.equal(await owner.textContent(".emoji-picker .label"), "slightly smiling face");
  await owner.keyboard.press("ArrowDown");
  await owner.keyboard.press("ArrowUp");
  await owner.keyboard.press("Enter");
  await owner.waitForSelector(".emoji-picker", { state: "detached" });
  assert.equal(await owner.evaluate(() => document.activeElement.id), "message");
  assert.equal(await owner.inputValue("#message"), "nice 👍 and 🙂");
  // Escape closes without inserting.
  await owner.keyboard.press("Shift+Tab");
  await owner.keyboard.press("Enter");
  await owner.waitForSelector(".emoji-picker");
  await owner.keyboard.press("Escape");
  await owner.waitForSelector(".emoji-picker", { state: "detached" });
  assert.equal(await owner.inputValue("#message"), "nice 👍 and 🙂");
  await owner.keyboard.press("Enter");
  await friend.waitForSelector('#messages li:has-text("nice 👍 and 🙂")');
});

test("a desktop notification for a message while the page is hidden, and the permission asked once", async () => {
  // Chromium lets a test grant the permission but not hide a page, so the
  // page is told it is hidden; the real Notification is watched, not replaced.
  const p = await open("notified", { permissions: ["notifications"] });
  await p.evaluate(() => {
    window.__shown = [];
    const Real = window.Notification;
    window.Notification = new Proxy(Real, { construct(target, args) { window.__shown.push(args[0]); return Reflect.construct(target, args); } });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden === true });
  });
  await loginWithKey(p, ownerKey);
  await p.click('#community-list li:has-text("Home")');
  await openGeneral(p);
  assert.ok(await p.isHidden("#notify-button"), "no button once the permission is granted");
  await p.evaluate(() => (window.__hidden = true));
  await send(pages.friend, "while you were away");
  await p.waitForFunction(() => window.__shown.length === 1);
  const friendName = await pages.friend.textContent("#me-person .name");
  assert.equal(await p.evaluate(() => window.__shown[0]), `${friendName} in #general (Home)`);
  // Visible again, with the channel open: the message is in view.
  await p.evaluate(() => (window.__hidden = false));
  await send(pages.friend, "while you look");
  await p.waitForSelector('#messages li:has-text("while you look")');
  assert.equal(await p.evaluate(() => window.__shown.length), 1);
  await p.context().close();

  // Headless Chromium answers "denied" before anyone is asked, so the
  // browser's side is played by a stand-in that has not been asked yet;
  // what is tested is the page: a button, one request on its press, and
  // no button and no request after a reload.
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  await ctx.addInitScript(() => {
    const asked = Number(localStorage.getItem("test.asked") || 0);
    window.Notification = class { static permission = "default"; };
    window.Notification.requestPermission = async () => (localStorage.setItem("test.asked", String(asked + 1)), "denied");
  });
  const q = await ctx.newPage();
  await q.goto(srv.base + "/");
  await loginWithKey(q, ownerKey);
  await q.waitForSelector("#notify-button:not([hidden])");
  await q.click("#notify-button");
  await q.waitForSelector("#notify-button", { state: "hidden" });
  await statusSays(q, "Notifications stay off.");
  await q.reload();
  await q.waitForSelector("#app:not([hidden])");
  assert.ok(await q.isHidden("#notify-button"), "offered again after a reload");
  assert.equal(await q.evaluate(() => localStorage.getItem("test.asked")), "1");
  await ctx.close();
});

test("a phone-sized screen shows one pane at a time, by touch and keyboard", async () => {
  for (const colorScheme of ["light", "dark"]) {
    const p = await open(`phone ${colorScheme}`, { width: 390, height: 800, colorScheme });
    await loginWithKey(p, ownerKey);
    const shown = () => p.evaluate(() => [".rail", ".channels", ".channel", ".members"].filter((s) => getComputedStyle(document.querySelector(s)).display !== "none"));
    const noSideways = async (what) => assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `${what} scrolls sideways`);
    await p.focus('#community-list li:has-text("Home")');
    await p.keyboard.press("Enter");
    await p.waitForSelector('#tree span:has-text("# general")');
    assert.deepEqual(await shown(), [".rail", ".channels"]);
    await noSideways("the channel list");
    await p.focus('#tree span:has-text("# general")');
    await p.keyboard.press("Enter");
    await p.waitForFunction(() => document.activeElement?.id === "message");
    assert.deepEqual(await shown(), [".channel"]);
    await noSideways("the channel");
    inside(await box(p, "#composer"), { left: 0, right: 390 }, "the composer");
    if (colorScheme === "light") await send(p, "typed on a phone, grouped with the rest");
    await p.screenshot({ path: join(shots, `phone-${colorScheme}.png`) });
    await p.click("#members-button");
    await p.waitForSelector("#member-list li");
    assert.deepEqual(await shown(), [".members"]);
    await noSideways("the member list");
    if (colorScheme === "light") await p.screenshot({ path: join(shots, "phone-members.png") });
    await p.click("#members-back");
    assert.deepEqual(await shown(), [".channel"]);
    await p.focus("#back-button");
    await p.keyboard.press("Enter");
    assert.deepEqual(await shown(), [".rail", ".channels"]);
    await p.context().close();
  }
});

test("a community with unread messages is marked in the rail, and Space opens it", async () => {
  const { owner, friend } = pages;
  // A second entry for the same community is a second socket, so the
  // owner can look at one while a message arrives in the other. Not at
  // general itself: reading it there would mark it read for both.
  await joinWith(owner, srv.invites[1], "Again");
  await send(friend, "a message for the other entry");
  await owner.waitForSelector('#community-list li.unread:has-text("Home")');
  assert.equal(await owner.getAttribute('#community-list li.unread', "title"), "Home (unread)");
  assert.equal(await owner.locator('#community-list li.unread:has-text("Again")').count(), 0, "the community in view is not marked");
  await owner.focus('#community-list li:has-text("Home")');
  await owner.keyboard.press(" ");
  await owner.waitForSelector('#community-list li.on:has-text("Home")');
  await owner.waitForSelector('#tree li.unread [role="button"]:has-text("# general")');
  await owner.focus('#tree [role="button"]:has-text("# general")');
  await owner.keyboard.press(" ");
  await owner.waitForSelector('#messages li:has-text("a message for the other entry")');
  assert.equal(await owner.locator("#tree li.unread").count(), 0);
  // Read here, it is read in the other entry of the same community too.
  await owner.waitForSelector("#community-list li.unread", { state: "detached" });
});

test("the strict CSP refused nothing the page did", async () => {
  assert.deepEqual(refused, []);
  // Control: an inline style is refused, and the listener hears it.
  const heard = pages.owner.waitForEvent("console", (m) => /Content Security Policy/.test(m.text()));
  await pages.owner.evaluate(() => document.body.append(Object.assign(document.createElement("div"), { innerHTML: '<p style="color: red">x</p>' })));
  await heard;
});
