// The iotad web client: your Iota (a community list sealed in this page),
// and the communities in it (channels, chat, voice, administration).
import * as c from "./crypto.js";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};

// Words for the error types a person may meet (PROTOCOL §2).
const errorWords = {
  error_permission: "You are not allowed to do that.",
  error_rate_limited: "Slow down a little: too many requests.",
  error_not_found: "That does not exist (any more).",
  error_invalid_secret: "That invite does not work: it is spent, expired or revoked.",
  error_invalid_user_id: "That key is not known here.",
  error_invalid_data: "That was not accepted",
  error_conflict: "Someone changed this at the same time; try again.",
};

function say(text) {
  $("status").textContent = text;
  clearTimeout(say.timer);
  if (text) say.timer = setTimeout(() => ($("status").textContent = ""), 6000);
}

function explain(err) {
  const words = errorWords[err.type];
  if (!words) return err.message || String(err);
  return err.type === "error_invalid_data" ? `${words}: ${err.detail}` : words;
}

class WireError extends Error {
  constructor(type, detail, data) {
    super(detail);
    this.type = type;
    this.detail = detail;
    this.data = data;
  }
}

// Socket is one WebSocket speaking the envelope: requests by id, pushes to
// onPush, and a reconnect with backoff driven by its owner.
class Socket {
  constructor(url) {
    this.url = url;
    this.pending = new Map();
    this.onPush = () => {};
    this.onClose = () => {};
  }
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve(this);
      ws.onerror = () => reject(new Error(`cannot reach ${this.url}`));
      ws.onclose = (ev) => {
        for (const p of this.pending.values()) p.reject(new WireError("closed", ev.reason || "connection closed"));
        this.pending.clear();
        this.onClose(ev);
      };
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        const p = m.id && this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          if (m.type.startsWith("error")) p.reject(new WireError(m.type, m.data.detail, m.data));
          else p.resolve(m);
          return;
        }
        this.onPush(m);
      };
    });
  }
  send(type, data, id) {
    const frame = { type, log: { log_level: 0, message: type }, data: data || {} };
    if (id) frame.id = id;
    this.ws.send(JSON.stringify(frame));
  }
  request(type, data) {
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send(type, data, id);
    });
  }
  close() {
    this.onClose = () => {};
    this.ws?.close();
  }
}

// login runs identification → challenge → challenge_response, login
// version 2: the challenge must open with the key we pinned for this server
// and this role, or the socket closes before anything is answered, so a
// server cannot pass another server's challenge through us (PROTOCOL §3).
async function login(sock, privateKey, ident, { role, pinned }) {
  const ch = await sock.request("identification", ident);
  let opened;
  try {
    opened = await c.answerChallenge(privateKey, ident.user_id, ch.data, { role, pinned });
  } catch (err) {
    sock.close();
    throw err;
  }
  const res = await sock.request("challenge_response", { challenge: opened.answer });
  return { res, ...opened };
}

// refusal puts a refused login in words; what names the server we meant
// to reach, pinnedBy where its key came from.
function refusal(err, what, pinnedBy) {
  const start = `This server is not ${what} — it may be trying to impersonate it, to log in there as you.`;
  const end = "Nothing was sent to it.";
  if (err.reason === "version") return `${start} It asked for an old kind of login that another server could relay. ${end}`;
  if (err.reason === "key" && pinnedBy === "first use") {
    return `${start} Its key has changed since this browser first used it. ${end} If its operator really replaced the key, get a key file with the new iota_key line.`;
  }
  if (err.reason === "key") return `${start} Its key is not the one in ${pinnedBy}. ${end}`;
  return `${start} Its challenge was made for another server. ${end}`;
}

const wsBase = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

// --- the key, kept in IndexedDB when asked to -----------------------------

// Two stores: "keys" holds the remembered key, "pins" the server keys
// pinned on first use, by socket URL, like SSH's known_hosts.
function idb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open("iotad", 2);
    r.onupgradeneeded = () => {
      for (const name of ["keys", "pins"]) if (!r.result.objectStoreNames.contains(name)) r.result.createObjectStore(name);
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
async function keyStore(mode, fn, store = "keys") {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const req = fn(db.transaction(store, mode).objectStore(store));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
const saveKey = (k) => keyStore("readwrite", (s) => s.put(k, "me"));
const loadKey = () => keyStore("readonly", (s) => s.get("me"));
const forgetKey = () => keyStore("readwrite", (s) => s.delete("me"));
const loadPin = (url) => keyStore("readonly", (s) => s.get(url), "pins");
const savePin = (url, key) => keyStore("readwrite", (s) => s.put(key, url), "pins");

// pinFor returns the key to hold a server to and where it came from: the
// given one (the key file's iota_key, an invite's key), else the one
// pinned here on first use, else none yet.
async function pinFor(url, given, givenBy) {
  if (given) return { pinned: given, pinnedBy: givenBy };
  return { pinned: (await loadPin(url)) || "", pinnedBy: "first use" };
}


// --- people ---------------------------------------------------------------------

// Words for the names the page makes up until the server carries display
// names: an adjective and an animal, picked by a hash of the user id, so
// a person has the same name on every page and device.
const ADJECTIVES = ["Amber", "Azure", "Brave", "Bright", "Calm", "Clever", "Coral", "Cosy", "Dapper", "Eager", "Fancy", "Gentle",
  "Golden", "Happy", "Hazel", "Indigo", "Jolly", "Keen", "Lively", "Lucky", "Mellow", "Misty", "Nimble", "Olive", "Plucky",
  "Quiet", "Rapid", "Rosy", "Sandy", "Silver", "Sunny", "Swift", "Tidy", "Violet", "Witty", "Zesty"];
const ANIMALS = ["Badger", "Beaver", "Bison", "Crane", "Dingo", "Dolphin", "Falcon", "Ferret", "Finch", "Fox", "Gecko", "Heron",
  "Ibis", "Koala", "Lemur", "Lynx", "Marten", "Moose", "Newt", "Otter", "Owl", "Panda", "Puffin", "Quail", "Raven", "Robin",
  "Seal", "Stoat", "Swan", "Tapir", "Toucan", "Walrus", "Wombat", "Yak", "Zebra", "Hare"];
const HUES = 12; // .hue0 … .hue11 in app.css, each checked for contrast with white

// hash is 32-bit FNV-1a: small, stable across browsers, and spread well
// enough for picking a name and a colour.
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const initials = (name) => name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => [...w][0].toUpperCase()).join("");

// person is how the page shows a member: the one place that turns a user
// id into a name and an avatar. When the server sends display names and
// avatars (issue 13), they go into com.profiles and show everywhere.
function person(com, userID) {
  const id = String(userID);
  const profile = com?.profiles?.get(id) || {};
  const h = hash(id);
  const name = profile.display_name || profile.name || `${ADJECTIVES[h % ADJECTIVES.length]} ${ANIMALS[Math.floor(h / ADJECTIVES.length) % ANIMALS.length]}`;
  return { id, name, avatar: profile.avatar ? fileURL(com, profile.avatar) : "", hue: (h >>> 20) % HUES, me: id === state.me?.userID };
}

// fileURL makes a file path of the server's absolute on the community's
// origin (the community may be on another port than the page). Only the
// server's own paths: the page's CSP lets images come from any port of its
// host, and a community must not point the page at another.
function fileURL(com, path) {
  if (typeof path !== "string" || !/^\/(files|api\/upload)\//.test(path)) return "about:blank";
  if (!com?.url) return path;
  return new URL(path, com.url.replace(/^ws/, "http")).href;
}

// attachmentsNode shows a message's files: images inline at their size,
// scaled down to the column by attributes (the CSP allows no inline style),
// other files as download links.
function attachmentsNode(com, files) {
  const box = el("div", { className: "attachments" });
  for (const f of files) {
    const href = fileURL(com, f.url);
    if (f.width && f.height && f.type.startsWith("image/")) {
      const scale = Math.min(1, 400 / f.width, 300 / f.height);
      const img = el("img", { src: href, alt: f.name, className: "attachment-image" });
      img.width = Math.max(1, Math.round(f.width * scale));
      img.height = Math.max(1, Math.round(f.height * scale));
      box.append(el("a", { href, target: "_blank", rel: "noopener" }, img));
    } else {
      const kb = f.size < 1024 ? `${f.size} B` : f.size < 1048576 ? `${(f.size / 1024).toFixed(1)} KiB` : `${(f.size / 1048576).toFixed(1)} MiB`;
      box.append(el("a", { href, download: f.name, className: "attachment-file", textContent: `${f.name} (${kb})` }));
    }
  }
  return box;
}

// renameMessages shows a member's new name and avatar on the messages
// already in the list.
function renameMessages(com, userID) {
  const who = person(com, userID);
  for (const li of $("messages").querySelectorAll("li.msg")) {
    if (li.dataset.sender !== userID) continue;
    const name = li.querySelector(".who");
    if (name) name.textContent = who.name;
    li.querySelector(".avatar")?.replaceWith(avatarNode(who));
  }
}

// uploadFile asks the channel for a ticket and PUTs the file with it.
async function uploadFile(com, channel, file) {
  const r = await com.fn(channel.path, channel.name, "text", "upload", { name: file.name || "file", size: file.size, type: file.type || "" });
  const res = await fetch(fileURL(com, r.data.payload.url), { method: "PUT", body: file });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(out.message || `upload failed (${res.status})`);
  return out;
}

// avatarNode is a picture when the person has one, else initials on
// their colour. No network: the colour and letters come from the id.
function avatarNode(p, label = p.name) {
  const a = el("span", { className: `avatar hue${p.hue}`, ariaHidden: "true" });
  if (p.avatar) a.append(el("img", { src: p.avatar, alt: "" }));
  else a.textContent = initials(label) || "?";
  return a;
}

function personNode(p, suffix = "") {
  return el("span", { className: "person", title: `${p.name}${suffix}\n${p.id}` }, avatarNode(p), el("span", { className: "name", textContent: p.name + suffix }));
}

// --- the Iota ---------------------------------------------------------------

const state = { me: null, iota: null, listKey: null, entries: [], communities: new Map(), current: null, backoff: 500 };

const iotaURL = () => `${wsBase()}/ws/iota`;

async function openIota() {
  const url = iotaURL();
  const { pinned, pinnedBy } = await pinFor(url, state.me.iotaKey, "your key file");
  const sock = new Socket(url);
  await sock.open();
  let serverKey;
  try {
    ({ serverKey } = await login(sock, state.me.privateKey, { user_id: state.me.userID }, { role: "iota", pinned }));
  } catch (err) {
    if (err instanceof c.LoginRefused) throw new Error(refusal(err, "your Iota", pinnedBy), { cause: err });
    throw err;
  }
  if (!pinned) await savePin(url, serverKey);
  sock.onPush = (m) => {
    if (m.type === "update" && m.data.result === "communities_changed") loadCommunities();
  };
  sock.onClose = () => {
    say("Connection to your Iota lost; reconnecting…");
    reconnectIota();
  };
  state.iota = sock;
  state.backoff = 500;
  await loadCommunities();
}

// reconnectIota retries with backoff until the Iota is back, and stops
// for good on a refused login: retrying would not make it the same server.
function reconnectIota() {
  const retry = (err) => (err.cause instanceof c.LoginRefused ? say(err.message) : reconnectIota());
  setTimeout(() => openIota().then(() => say(""), retry), (state.backoff = Math.min(state.backoff * 2, 15000)));
}

async function loadCommunities() {
  const m = await state.iota.request("get_communities", {});
  const out = [];
  for (const e of m.data.communities) {
    try {
      out.push({
        entryID: e.entry_id,
        address: await c.open(state.listKey, "community_address", e.community_address),
        title: await c.open(state.listKey, "community_title", e.community_title),
        position: await c.open(state.listKey, "position", e.position),
      });
    } catch {
      out.push({ entryID: e.entry_id, address: "", title: "(sealed with another key)", position: "" });
    }
  }
  state.entries = out;
  renderCommunities();
}

function renderCommunities() {
  const ul = $("community-list");
  ul.replaceChildren();
  for (const e of state.entries) {
    const li = el("li", { tabIndex: 0, title: e.title });
    li.dataset.entry = e.entryID;
    const on = state.current?.entry.entryID === e.entryID;
    if (on) li.className = "on", li.setAttribute("aria-current", "true");
    // Unread in a community one is not looking at marks its icon too.
    if (!on && state.communities.get(e.entryID)?.unread.size) li.classList.add("unread"), (li.title = `${e.title} (unread)`);
    const mentions = [...(state.communities.get(e.entryID)?.counts.values() || [])].reduce((n, x) => n + x.mentions, 0);
    // A community's icon: its initials on a colour from its address, the
    // same on every device because the address is in the sealed entry.
    const icon = { name: e.title, hue: hash(e.address || e.entryID) % HUES, avatar: "" };
    const remove = el("button", { className: "remove", textContent: "×", title: "Remove from my list", ariaLabel: `Remove ${e.title}` });
    remove.onclick = async (ev) => {
      ev.stopPropagation();
      await state.iota.request("remove_community", { entry_id: e.entryID }).catch((err) => say(explain(err)));
      loadCommunities();
    };
    li.append(avatarNode(icon), el("span", { className: "sr-only", textContent: e.title }), remove);
    if (mentions) li.append(el("span", { className: "mention-badge", textContent: String(mentions), ariaLabel: `${mentions} mentions` }));
    li.onclick = li.onkeydown = (ev) => {
      if (ev.type === "keydown" && ((ev.key !== "Enter" && ev.key !== " ") || ev.target !== li)) return;
      ev.preventDefault();
      selectCommunity(e);
    };
    ul.append(li);
  }
  // Someone with an empty list has one thing to do: join.
  if (!state.entries.length) showJoin(true);
  renderEmpty();
}

// showJoin opens or closes the join panel by the rail's + button.
function showJoin(open) {
  $("join-panel").hidden = !open;
  $("join-button").setAttribute("aria-expanded", String(open));
  if (open) $("invite").focus();
}

// parseAddress reads tensamin://host:port/?invite=…&key=…&tls=1, as
// api/client.ParseAddress does: tls=1 means wss://, no tls means ws://.
function parseAddress(text) {
  let u;
  try {
    u = new URL(text.trim().replace(/^tensamin:/i, "http:"));
  } catch {
    throw new Error("That is not a tensamin:// invite link.");
  }
  const tls = u.searchParams.get("tls") || "";
  if (!/^tensamin:/i.test(text.trim()) || !u.port || u.username || (u.pathname !== "/" && u.pathname !== "") || !["", "0", "1"].includes(tls)) {
    throw new Error("That is not a tensamin://host:port/ invite link.");
  }
  return { host: u.host, tls: tls === "1", invite: u.searchParams.get("invite") || "", key: u.searchParams.get("key") || "" };
}

// socketURL is a community's socket. An https page may not open ws://
// (the browser blocks it as mixed content): say so instead of failing
// with "cannot reach".
function socketURL(addr) {
  if (!addr.tls && location.protocol === "https:") {
    throw new Error(`This page is open over https, and ${addr.host} speaks only plain ws://, which the browser blocks from an https page. ` +
      `Ask its operator for an invite of a community served with TLS (the link then ends in tls=1), or open this page over http on that community's own machine.`);
  }
  return `${addr.tls ? "wss" : "ws"}://${addr.host}/`;
}

async function addCommunity(inviteText, title) {
  const inv = parseAddress(inviteText);
  // Join first, so that only a community that proved its key is listed.
  // The sealed entry keeps tls=1: the Iota's other clients need it too.
  const address = `tensamin://${inv.host}/?key=${inv.key}${inv.tls ? "&tls=1" : ""}`;
  const com = new Community({ entryID: "", address, title: title || inv.host });
  await com.connect(inv.invite);
  com.close();
  const sealed = {};
  for (const [field, value] of [["community_address", com.entry.address], ["community_title", com.entry.title], ["position", String(state.entries.length)]]) {
    sealed[field] = await c.seal(state.listKey, field, value);
  }
  // The new entry is the one not listed before: the list may already
  // hold the same address under another name.
  const known = new Set(state.entries.map((e) => e.entryID));
  await state.iota.request("add_community", sealed);
  await loadCommunities();
  const added = state.entries.find((e) => !known.has(e.entryID) && e.address === com.entry.address);
  showJoin(false);
  if (added) selectCommunity(added);
}

// --- a community -------------------------------------------------------------

class Community {
  constructor(entry) {
    this.entry = entry;
    this.addr = parseAddress(entry.address);
    this.pinned = this.addr.key;
    this.tree = {};
    this.unread = new Set();
    // channel key → {unread, mentions}: the tree's at login, kept by
    // message_live and read_changed (PROTOCOL §9 "Mentions and unread").
    this.counts = new Map();
    this.collapsed = new Set();
    this.typing = new Map();
    // user id → {name, avatar} once the server sends display names; read
    // only by person().
    this.profiles = new Map();
    this.members = new Map();
  }
  async connect(invite) {
    this.url = socketURL(this.addr);
    const sock = new Socket(this.url);
    await sock.open();
    const ident = { user_id: state.me.userID };
    if (invite) Object.assign(ident, { invite, public_key: c.b64encode(c.publicKey(state.me.privateKey)) });
    // An entry made by another client may lack the key; it is then
    // pinned here on first use.
    const { pinned, pinnedBy } = await pinFor(this.url, this.pinned, "your invite");
    let res, answer, serverKey;
    try {
      ({ res, answer, serverKey } = await login(sock, state.me.privateKey, ident, { role: "community", pinned }));
    } catch (err) {
      if (err instanceof c.LoginRefused) throw new Error(refusal(err, invite ? "the community in your invite" : "the community you joined", pinnedBy), { cause: err });
      throw err;
    }
    const d = res.data;
    let proven = false;
    try {
      proven = c.sameKey(serverKey, d.community_public_key) && (await c.verifyProof(state.me.privateKey, serverKey, answer, d.proof));
    } catch {
      // a malformed key or proof proves nothing
    }
    if (!proven) {
      sock.close();
      throw new Error("This community could not prove it is the one in the invite.");
    }
    if (!pinned) await savePin(this.url, serverKey);
    this.sock = sock;
    this.role = d.role;
    this.tree = d.interactables;
    takeCounts(this, this.tree, "");
    sock.onPush = (m) => this.push(m);
    sock.onClose = (ev) => this.closed(ev);
    this.backoff = 500;
  }
  close() {
    this.sock?.close();
  }
  closed(ev) {
    if (ev.code === 4001 || ev.code === 4003) {
      say(ev.code === 4001 ? "You were removed from this community." : "You are banned from this community.");
      return;
    }
    say("Connection lost; reconnecting…");
    const retry = (err) => (err.cause instanceof c.LoginRefused ? say(err.message) : this.closed(ev));
    setTimeout(() => this.connect().then(() => this.resumed(), retry), (this.backoff = Math.min(this.backoff * 2, 15000)));
  }
  // resumed puts the page back where it was: the tree, and the open
  // channel with what was said while the connection was down.
  resumed() {
    say("");
    if (state.current !== this) return;
    render();
    loadMembers(this);
    if (view.com === this && view.channel) view.open(this, view.channel.path, view.channel.name);
  }
  fn(path, name, codec, func, payload) {
    return this.sock.request("function", { codec, path, name, function: func, payload: payload || {} });
  }
  root(func, payload) {
    return this.fn("", "", "community", func, payload);
  }
  push(m) {
    if (m.type !== "update") return;
    const d = m.data;
    const key = `${d.path}/${d.name}`;
    // Two entries may name channels alike (two communities both have
    // General/general): in view means this community's channel.
    const inView = view.channel && view.com === this && view.key === key;
    switch (d.result) {
      case "interactables_changed":
        this.tree = d.payload.interactables;
        // A channel made private to us leaves the tree: close it if open.
        if (view.com === this && view.channel && !findChannel(this.tree, view.channel.path, view.channel.name)) view.close();
        if (state.current === this && $("admin-channels")) fillChannels(this, $("admin-channels"));
        break;
      case "profile_changed":
        this.profiles.set(d.payload.user_id, d.payload);
        if (state.current === this) renderMembers(), renderTyping(), view.com === this && renameMessages(this, d.payload.user_id);
        break;
      case "role_changed":
        if (d.payload.user_id === state.me.userID) this.role = d.payload.role;
        loadMembers(this);
        break;
      case "message_live":
        if (inView) view.queue(d.payload), markRead(this, d.path, d.name, d.payload.message_id);
        else countLive(this, key, d.payload), state.current !== this && nextFrame(renderCommunities);
        seen(this, d.payload.sender_id);
        if (wantsNotification(this, key, d.payload)) notifyMessage(this, d, d.payload);
        break;
      case "message_edited":
      case "message_deleted":
        if (inView) view.change(d.result, d.payload);
        break;
      case "reaction_changed":
        if (inView) view.flush(), reactionChanged(d.payload);
        break;
      case "pins_changed":
        if (inView && pins.box) showPins();
        break;
      case "typing":
        seen(this, d.payload.user_id);
        this.typing.set(`${key}|${d.payload.user_id}`, Date.now());
        setTimeout(renderTyping, 4100);
        break;
      case "user_changed":
      case "user_left":
        voiceUpdate(this, d);
        break;
      case "member_timed_out":
        loadMembers(this);
        break;
      case "read_changed":
        setCounts(this, key, d.payload);
        nextFrame(renderCommunities);
        break;
    }
    // Live messages and read marks change the tree only through its
    // counts, which setCounts redraws when they show differently.
    const counted = d.result === "read_changed" || d.result.startsWith("message_");
    if (state.current === this && d.result !== "typing" && !counted) renderTree();
    if (d.result === "message_live" || d.result === "typing") nextFrame(renderTyping);
  }
}

async function selectCommunity(entry) {
  let com = state.communities.get(entry.entryID);
  if (!com) {
    try {
      com = new Community(entry);
      await com.connect();
    } catch (err) {
      say(err.type ? explain(err) : err.message);
      return;
    }
    state.communities.set(entry.entryID, com);
  }
  state.current = com;
  // The administration shown was the previous community's.
  $("admin").hidden = true;
  $("messages").hidden = $("typing").hidden = false;
  view.close();
  render();
  loadMembers(com);
}

function render() {
  renderCommunities();
  $("community-name").textContent = state.current?.entry.title || "";
  $("admin-button").hidden = !state.current || state.current.role === "member";
  $("me-person").replaceChildren(personNode(person(state.current, state.me.userID)));
  renderTree();
  renderMembers();
}

// renderEmpty says what to do next where the channel would be, while
// neither a channel nor the administration is open.
function renderEmpty() {
  const box = $("empty");
  box.hidden = !!view.channel || !$("admin").hidden;
  box.textContent = state.current ? "Pick a text channel to read it, or a voice channel to join it."
    : state.entries.length ? "Pick a community on the left." : "Join a community with the invite link a friend sent you.";
}

// --- the member column -------------------------------------------------------------

const ROLES = [["owner", "Owner"], ["admin", "Admins"], ["moderator", "Moderators"], ["member", "Members"]];

// loadMembers asks for the member list. The protocol has no presence
// push yet: "online" is as of this call, brought up to date when a
// member acts (seen), when the page comes back into view and once a
// minute. A lost connection says so itself, so its error is not repeated.
async function loadMembers(com) {
  if (!com?.sock) return;
  const sock = (com.membersLoading = com.sock);
  const r = await com.root("list_members").catch((err) => (err.type !== "closed" && say(explain(err)), null));
  if (com.membersLoading === sock) com.membersLoading = null;
  if (!r) return;
  com.members = new Map(r.data.payload.members.filter((m) => !m.banned).map((m) => [m.user_id, m]));
  for (const m of r.data.payload.members) if (m.display_name || m.avatar) com.profiles.set(m.user_id, m);
  if (state.current === com) renderMembers();
}

// seen marks someone who just spoke or typed as online; someone not in
// the list has just joined, so the list is fetched again, once at a time
// however fast a newcomer writes.
function seen(com, userID) {
  const m = com.members.get(userID);
  if (!m) return com.membersLoading !== com.sock && loadMembers(com);
  if (m.online) return;
  m.online = true;
  if (state.current === com) renderMembers();
}

function renderMembers() {
  const com = state.current;
  const box = $("member-list");
  box.replaceChildren();
  if (!com) return;
  let online = 0;
  for (const [role, heading] of ROLES) {
    const people = [...com.members.values()].filter((m) => m.role === role).map((m) => ({ m, p: person(com, m.user_id) }));
    if (!people.length) continue;
    // Online first, then by name, as Discord and Stoat list them.
    people.sort((a, b) => (b.m.online - a.m.online) || a.p.name.localeCompare(b.p.name));
    const ul = el("ul");
    for (const { m, p } of people) {
      online += m.online ? 1 : 0;
      const li = el("li", { className: m.online ? "online" : "offline" }, personNode(p, p.me ? " (you)" : ""));
      li.dataset.user = m.user_id;
      li.dataset.role = role;
      li.querySelector(".person").title += m.online ? "\nonline" : "\noffline";
      memberControls(com, li, m);
      ul.append(li);
    }
    box.append(el("h3", { textContent: `${heading} — ${people.length}` }), ul);
  }
  $("members-title").textContent = com.members.size ? `Members — ${online} online` : "Members";
}

// --- the channel tree ------------------------------------------------------------

function renderTree() {
  const com = state.current;
  const root = $("tree");
  root.replaceChildren();
  if (!com) return;
  const walk = (obj, path, ul) => {
    for (const [name, ch] of Object.entries(obj)) {
      const key = `${path}/${name}`;
      const li = el("li", { className: ch.codec });
      const label = el("span", { tabIndex: 0, title: name, textContent: (ch.codec === "voice" ? "♪ " : ch.codec === "text" ? "# " : "") + name });
      label.setAttribute("role", "button");
      if (ch.codec === "category") {
        label.setAttribute("aria-expanded", String(!com.collapsed.has(key)));
        if (com.collapsed.has(key)) li.classList.add("collapsed");
      }
      if (ch.private) label.append(el("span", { className: "lock", textContent: "🔒", title: "private: some roles cannot see it", ariaLabel: "private" }));
      if (view.com === com && view.key === key) label.classList.add("on");
      if (com.unread.has(key)) li.classList.add("unread");
      const mentioned = com.counts.get(key)?.mentions;
      if (mentioned) label.append(el("span", { className: "mention-badge", textContent: String(mentioned), ariaLabel: `${mentioned} mentions` }));
      const activate = () => {
        if (ch.codec === "category") com.collapsed.has(key) ? com.collapsed.delete(key) : com.collapsed.add(key), renderTree();
        else if (ch.codec === "text") view.open(com, path, name);
        else if (ch.codec === "voice") joinVoice(com, path, name);
      };
      label.onclick = activate;
      // A role=button answers Enter and Space, as a button does.
      label.onkeydown = (ev) => (ev.key === "Enter" || ev.key === " ") && (ev.preventDefault(), activate());
      li.append(label);
      if (ch.codec === "category" && !com.collapsed.has(key)) {
        const sub = el("ul");
        walk(ch.data, path ? `${path}/${name}` : name, sub);
        li.append(sub);
      }
      if (ch.codec === "voice") {
        const users = el("ul", { className: "voice-users" });
        for (const [uid, u] of Object.entries(ch.data.active_users || {})) {
          const speaking = com.speaking?.has(uid);
          const who = person(com, uid);
          const li = el("li", { className: speaking ? "speaking" : "" }, personNode(who, u.state !== "active" ? ` (${u.state})` : ""));
          if (u.streaming && uid !== state.me.userID && call.sock) {
            const watch = el("button", { textContent: "watch", ariaLabel: `Watch ${who.name}'s screen` });
            watch.onclick = () => call.sock.request("watch_stream", { user_id: uid }).catch((err) => say(explain(err)));
            li.append(watch);
          }
          users.append(li);
        }
        li.append(users);
      }
      ul.append(li);
    }
  };
  walk(com.tree, "", root);
}

function renderTyping() {
  const com = state.current;
  const now = Date.now();
  const who = [];
  if (com) {
    for (const [k, t] of com.typing) {
      if (now - t > 4000) com.typing.delete(k);
      else if (k.startsWith(`${view.key}|`)) who.push(person(com, k.split("|")[1]).name);
    }
  }
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
}

// --- a text channel: history paged with before, a bounded number of nodes -----

const MAX_NODES = 300;
// A run of one author's messages shares one header while each follows
// the last by at most this long (Discord uses about seven minutes).
const GROUP_MS = 7 * 60 * 1000;
// In the person's locale and time zone: undefined is the browser's own.
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const dayOf = (ms) => new Date(ms).toDateString();

// decorate marks li as the start of a day (it shows the divider) and of
// a run of one author (it shows avatar, name and time), from the message
// before it. Called for every li whose predecessor changed.
function decorate(li) {
  if (!li) return;
  const prev = li.previousElementSibling;
  const t = Number(li.dataset.time);
  const newDay = !prev || dayOf(Number(prev.dataset.time)) !== dayOf(t);
  const first = newDay || prev.dataset.sender !== li.dataset.sender || t - Number(prev.dataset.time) > GROUP_MS;
  li.classList.toggle("newday", newDay);
  li.classList.toggle("first", first);
}

// nextFrame runs fn once before the next paint however often it is asked
// for meanwhile: a burst of live messages is laid out once, not once each.
const frameWork = new Set();
function nextFrame(fn) {
  if (!frameWork.size) requestAnimationFrame(() => {
    const fns = [...frameWork];
    frameWork.clear();
    for (const f of fns) f();
  });
  frameWork.add(fn);
}

const view = {
  channel: null,
  key: "",
  incoming: [],
  async open(com, path, name) {
    this.close();
    this.com = com;
    this.channel = { path, name };
    this.key = `${path}/${name}`;
    com.unread.delete(this.key);
    $("admin").hidden = true;
    $("messages").hidden = $("typing").hidden = false;
    $("empty").hidden = true;
    $("channel-name").textContent = `# ${name}`;
    $("channel-name").title = name;
    $("composer").hidden = false;
    $("messages").replaceChildren();
    setPane("channel");
    renderTree();
    // Live messages that come before the first page are held back (see
    // flush): put first, they would stand above older ones, or twice.
    this.loaded = false;
    const opening = (this.opening = {});
    const m = await com.fn(path, name, "text", "get_messages", { loaded_messages: 0, amount: 50 }).catch((err) => say(explain(err)));
    // Another open (another channel, or this one again on a reconnect)
    // has cleared the list since: this page is not its to fill.
    if (this.opening !== opening) return;
    if (m) this.more = m.data.payload.has_more, this.append(m.data.payload.messages, true);
    // Also when the page failed (the error is on the status line): what is
    // said from now on still shows, and the held messages do not pile up.
    this.loaded = true;
    this.flush();
    if (!m) return;
    const newest = m.data.payload.messages.at(-1);
    if (newest) markRead(com, path, name, newest.message_id);
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
    $("message").focus();
  },
  close() {
    cancelReply();
    closePins();
    this.channel = null;
    this.key = "";
    this.opening = null;
    this.incoming = [];
    $("composer").hidden = true;
    $("messages").replaceChildren();
    $("channel-name").textContent = "";
    closeEmoji();
    renderEmpty();
  },
  node(msg) {
    const who = person(this.com, msg.sender_id);
    const at = new Date(msg.send_time);
    const li = el("li", { className: mentionsMe(msg) ? "msg mentioned" : "msg" });
    li.dataset.id = msg.message_id;
    li.dataset.sender = msg.sender_id;
    li.dataset.time = msg.send_time;
    const day = el("div", { className: "day", textContent: dayFormat.format(at) });
    day.setAttribute("role", "separator");
    const time = (className) => el("time", { className, dateTime: at.toISOString(), title: fullFormat.format(at), textContent: timeFormat.format(at) });
    const head = el("div", { className: "head" }, el("span", { className: "who", textContent: who.name, title: who.id }), time("when"));
    const text = el("div", { className: "text" }, el("span", { className: "body", textContent: msg.message }), " ",
      el("span", { className: "edited", textContent: msg.edited_at ? "(edited)" : "" }));
    const actions = el("span", { className: "actions" });
    const mine = msg.sender_id === state.me.userID;
    if (mine) {
      const edit = el("button", { textContent: "edit", ariaLabel: "Edit message" });
      edit.onclick = async () => {
        const text = prompt("Edit message", li.querySelector(".body").textContent);
        if (text) await this.com.fn(this.channel.path, this.channel.name, "text", "edit_message", { message_id: msg.message_id, message: text }).catch((err) => say(explain(err)));
      };
      actions.append(edit);
    }
    messageActions(this, msg, actions);
    if (mine || ["owner", "admin", "moderator"].includes(this.com.role)) {
      const del = el("button", { textContent: "delete", ariaLabel: "Delete message" });
      del.onclick = () => this.com.fn(this.channel.path, this.channel.name, "text", "delete_message", { message_id: msg.message_id }).catch((err) => say(explain(err)));
      actions.append(del);
    }
    if (msg.reply) text.prepend(quoteNode(this.com, msg.reply));
    li.append(day, avatarNode(who), head, time("gutter-time"), text);
    if (msg.attachments?.length) li.append(attachmentsNode(this.com, msg.attachments));
    li.append(reactionsNode(msg.reactions));
    if (actions.childElementCount) li.append(actions);
    return li;
  },
  // queue takes a live message; flush puts what came since the last
  // frame into the list in one go.
  queue(msg) {
    this.incoming.push(msg);
    nextFrame(this.flush);
  },
  flush() {
    if (!view.loaded) return;
    // message_id only grows within a channel (PROTOCOL §5.3), so what the
    // first page already holds is what is not newer than its last.
    const newest = $("messages").lastElementChild?.dataset.id ?? "";
    const msgs = view.incoming.splice(0).filter((msg) => msg.message_id > newest);
    if (msgs.length) view.append(msgs);
  },
  append(msgs, quiet) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    if (msgs.length > MAX_NODES) this.more = true;
    const nodes = msgs.slice(-MAX_NODES).map((msg) => this.node(msg));
    list.append(...nodes);
    for (const li of nodes) decorate(li);
    let dropped = false;
    while (list.children.length > MAX_NODES) list.firstElementChild.remove(), (this.more = true), (dropped = true);
    if (dropped) decorate(list.firstElementChild);
    if (atBottom || quiet) list.scrollTop = list.scrollHeight;
  },
  change(result, p) {
    this.flush();
    const li = $("messages").querySelector(`li[data-id="${p.message_id}"]`);
    if (!li) return;
    if (result === "message_deleted") {
      const next = li.nextElementSibling;
      li.remove();
      decorate(next);
    } else (li.querySelector(".body").textContent = p.message), (li.querySelector(".edited").textContent = "(edited)");
  },
  async older() {
    if (!this.channel || !this.more || this.loading) return;
    const first = $("messages").firstElementChild;
    if (!first) return;
    this.loading = true;
    const opening = this.opening;
    const m = await this.com.fn(this.channel.path, this.channel.name, "text", "get_messages", { before: first.dataset.id, amount: 50 }).catch((err) => say(explain(err)));
    this.loading = false;
    if (!m || this.opening !== opening) return;
    const list = $("messages");
    const height = list.scrollHeight;
    const nodes = m.data.payload.messages.map((msg) => this.node(msg));
    list.prepend(...nodes);
    for (const li of nodes) decorate(li);
    decorate(first);
    this.more = m.data.payload.has_more;
    // Keep the number of nodes bounded: drop the newest; the newest page
    // comes back when the channel is opened again.
    while (list.children.length > MAX_NODES) list.lastElementChild.remove();
    list.scrollTop = list.scrollHeight - height;
  },
};

// --- replies, reactions and pins (PROTOCOL §9 "Replies, reactions and pins") -----------

const MODERATORS = ["owner", "admin", "moderator"];
const replying = { to: "" };

function channelFn(func, payload) {
  return view.com.fn(view.channel.path, view.channel.name, "text", func, payload).catch((err) => say(explain(err)));
}

// quoteNode is the line a reply shows of the message it answers; a click
// scrolls to that message when it is loaded.
function quoteNode(com, reply) {
  const q = el("button", { type: "button", className: "quote" });
  if (reply.deleted) q.textContent = "↪ (deleted message)";
  else q.append("↪ ", el("span", { className: "who", textContent: person(com, reply.sender_id).name }), " ", reply.message);
  q.onclick = () => {
    const target = $("messages").querySelector(`li[data-id="${reply.message_id}"]`);
    if (target) target.scrollIntoView({ block: "center" }), target.classList.add("flash"), setTimeout(() => target.classList.remove("flash"), 1200);
  };
  return q;
}

function reactionsNode(reactions = []) {
  const box = el("div", { className: "reactions" });
  for (const r of reactions) box.append(chip(r.emoji, r.count, r.mine));
  return box;
}

function chip(emoji, count, mine) {
  const b = el("button", { type: "button", className: "chip", textContent: `${emoji} ${count}`, ariaLabel: `${emoji} ${count}` });
  b.dataset.emoji = emoji;
  b.dataset.count = count;
  b.setAttribute("aria-pressed", String(mine));
  b.onclick = () => {
    const li = b.closest("li.msg");
    channelFn(b.getAttribute("aria-pressed") === "true" ? "remove_reaction" : "add_reaction", { message_id: li.dataset.id, emoji });
  };
  return b;
}

function reactionChanged(p) {
  const li = $("messages").querySelector(`li[data-id="${p.message_id}"]`);
  if (!li) return;
  const box = li.querySelector(".reactions");
  const old = [...box.children].find((c) => c.dataset.emoji === p.emoji);
  const mine = p.user_id === state.me.userID ? p.added : old?.getAttribute("aria-pressed") === "true";
  if (!p.count) return old?.remove();
  const next = chip(p.emoji, p.count, mine);
  if (old) old.replaceWith(next);
  else box.append(next);
}

function messageActions(v, msg, actions) {
  const reply = el("button", { type: "button", textContent: "reply", ariaLabel: "Reply" });
  reply.onclick = () => startReply(v.com, msg);
  const react = el("button", { type: "button", textContent: "react", ariaLabel: "Add reaction" });
  react.onclick = () => {
    if (emoji.box) return closeEmoji();
    const box = (emoji.box = emojiPicker((e) => (channelFn("add_reaction", { message_id: msg.message_id, emoji: e }), closeEmoji()), () => closeEmoji()));
    document.body.append(box);
    const r = react.getBoundingClientRect();
    box.style.left = `${Math.max(8, Math.min(r.left, innerWidth - box.offsetWidth - 8))}px`;
    box.style.top = `${Math.max(8, r.top - box.offsetHeight - 8)}px`;
    box.focusFirst();
  };
  actions.append(reply, react);
  if (MODERATORS.includes(v.com.role)) {
    const pin = el("button", { type: "button", textContent: "pin", ariaLabel: "Pin or unpin" });
    pin.onclick = async () => {
      const list = await channelFn("list_pins", {});
      const pinned = list?.data.payload.pins.some((p) => p.message_id === msg.message_id);
      channelFn(pinned ? "unpin_message" : "pin_message", { message_id: msg.message_id });
    };
    actions.append(pin);
  }
}

function startReply(com, msg) {
  replying.to = msg.message_id;
  let bar = $("reply-bar");
  if (!bar) {
    bar = el("div", { id: "reply-bar", className: "reply-bar" });
    $("composer").prepend(bar);
  }
  const cancel = el("button", { type: "button", className: "quiet", textContent: "✕", ariaLabel: "Cancel reply" });
  cancel.onclick = cancelReply;
  bar.replaceChildren(el("span", { textContent: `Replying to ${person(com, msg.sender_id).name}` }), cancel);
  $("message").focus();
}

function cancelReply() {
  replying.to = "";
  $("reply-bar")?.remove();
}

const pins = { box: null };

async function showPins() {
  const m = await channelFn("list_pins", {});
  if (!m || !view.channel) return;
  if (!pins.box) {
    pins.box = el("aside", { id: "pins", className: "popover pins" });
    pins.box.setAttribute("aria-label", "Pinned messages");
    document.body.append(pins.box);
  }
  const list = el("ul");
  for (const p of m.data.payload.pins) {
    const item = el("li", {}, el("span", { className: "who", textContent: person(view.com, p.sender_id).name }), " ", p.message);
    item.onclick = () => $("messages").querySelector(`li[data-id="${p.message_id}"]`)?.scrollIntoView({ block: "center" });
    list.append(item);
  }
  const close = el("button", { type: "button", className: "quiet", textContent: "✕", ariaLabel: "Close pins" });
  close.onclick = closePins;
  pins.box.replaceChildren(el("h3", { textContent: "Pinned" }), close, m.data.payload.pins.length ? list : el("p", { textContent: "No pins yet." }));
}

function closePins() {
  pins.box?.remove();
  pins.box = null;
}

function wirePins() {
  const b = el("button", { id: "pins-button", type: "button", className: "quiet", textContent: "📌", title: "Pins", ariaLabel: "Pins" });
  b.onclick = () => (pins.box ? closePins() : view.channel && showPins());
  $("members-button").before(b);
}

// setPane picks what a phone shows: "nav" (communities and channels),
// "channel" or "members". Wider screens show them side by side and only
// keep the value for when the window narrows.
function setPane(pane) {
  $("app").dataset.pane = pane;
}

// --- voice -----------------------------------------------------------------------

const call = { pc: null, sock: null, stream: null, com: null, muted: false, deafened: false, audio: new Map() };

// voiceUpdate keeps the tree's active_users and the speaking marks current.
function voiceUpdate(com, d) {
  com.speaking ||= new Set();
  const p = d.payload;
  if (d.result === "user_changed" && p.speaking) com.speaking.add(p.user_id);
  else com.speaking.delete(p.user_id);
  let node = { data: com.tree };
  for (const part of d.path ? d.path.split("/") : []) node = node?.data?.[part];
  const ch = node?.data?.[d.name];
  if (!ch || ch.codec !== "voice") return;
  ch.data.active_users ||= {};
  if (d.result === "user_left" || p.state === "inactive") delete ch.data.active_users[p.user_id];
  else ch.data.active_users[p.user_id] = { state: p.state, streaming: p.streaming };
}

async function joinVoice(com, path, name) {
  if (call.pc) await leaveVoice();
  try {
    const t = await com.fn(path, name, "voice", "join");
    const { ticket, ice_servers, call_url } = t.data.payload;
    call.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    // In a cluster the call lives on one node, which join names.
    const sock = new Socket(call_url || `${com.url}ws/calls/`);
    await sock.open();
    await sock.request("identification", { path, name, ticket });
    const pc = new RTCPeerConnection({ iceServers: ice_servers });
    // Visible to the browser tests (and to a curious person's console).
    (window.__iotadCalls ||= []).push(pc);
    Object.assign(call, { pc, sock, com, path, name, pendingICE: [] });
    for (const track of call.stream.getAudioTracks()) pc.addTrack(track, call.stream);
    pc.onicecandidate = (ev) => ev.candidate && sock.send("webrtc_ice", { candidate: ev.candidate.toJSON() });
    pc.ontrack = (ev) => {
      if (ev.track.kind === "video") {
        const v = el("video", { autoplay: true, playsInline: true, muted: true });
        v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
        call.audio.set(ev.track.id, v);
        $("screens").append(v);
        ev.track.onended = () => v.remove();
        return;
      }
      const a = el("audio", { autoplay: true, muted: call.deafened });
      a.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      call.audio.set(ev.track.id, a);
      document.body.append(a);
    };
    // Signalling runs one step at a time: a server offer that arrives
    // while our answer is still being applied waits for it.
    let chain = Promise.resolve();
    const step = (fn) => (chain = chain.then(fn).catch((err) => say(`Voice: ${err.message}`)));
    sock.onPush = (m) => step(async () => {
      if (m.type === "webrtc_sdp" && m.data.type === "offer") {
        if (pc.signalingState === "have-local-offer") return; // ours wins; the server offers again
        await pc.setRemoteDescription(m.data);
        await pc.setLocalDescription(await pc.createAnswer());
        sock.send("webrtc_sdp", { type: "answer", sdp: pc.localDescription.sdp });
      } else if (m.type === "webrtc_ice") {
        pc.remoteDescription ? await pc.addIceCandidate(m.data.candidate).catch(() => {}) : call.pendingICE.push(m.data.candidate);
      }
    });
    sock.onClose = () => endCall();
    call.offer = () => step(async () => {
      await pc.setLocalDescription(await pc.createOffer());
      const ans = await sock.request("webrtc_sdp", { type: "offer", sdp: pc.localDescription.sdp });
      await pc.setRemoteDescription(ans.data);
      for (const cand of call.pendingICE.splice(0)) await pc.addIceCandidate(cand).catch(() => {});
    });
    await call.offer();
    $("call").hidden = false;
    $("call-name").textContent = `In ${name}`;
  } catch (err) {
    say(err.type ? explain(err) : `Voice: ${err.message}`);
    endCall();
  }
}

// shareScreen starts or stops sharing a screen in the call.
async function shareScreen() {
  if (!call.pc) return;
  if (call.screen) {
    call.screen.getTracks().forEach((t) => t.stop());
    call.pc.removeTrack(call.screenSender);
    call.screen = null;
    $("share").textContent = "Share screen";
    await call.sock.request("end_stream", {}).catch((err) => say(explain(err)));
    return call.offer();
  }
  try {
    await call.sock.request("start_stream", {});
    call.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    call.screenSender = call.pc.addTrack(call.screen.getVideoTracks()[0], call.screen);
    call.screen.getVideoTracks()[0].onended = () => call.screen && shareScreen();
    $("share").textContent = "Stop sharing";
    await call.offer();
  } catch (err) {
    say(err.type ? explain(err) : `Screen share: ${err.message}`);
  }
}

function endCall() {
  call.screen?.getTracks().forEach((t) => t.stop());
  call.screen = null;
  $("screens").replaceChildren();
  $("share").textContent = "Share screen";
  call.pc?.close();
  call.stream?.getTracks().forEach((t) => t.stop());
  for (const a of call.audio.values()) a.remove();
  call.audio.clear();
  call.sock?.close();
  Object.assign(call, { pc: null, sock: null, stream: null, muted: false, deafened: false });
  $("call").hidden = true;
}

async function leaveVoice() {
  const { com, path, name } = call;
  endCall();
  await com?.fn(path, name, "voice", "leave").catch(() => {});
}

async function setVoiceState() {
  call.stream?.getAudioTracks().forEach((t) => (t.enabled = !call.muted && !call.deafened));
  for (const a of call.audio.values()) a.muted = call.deafened;
  $("mute").textContent = call.muted ? "Unmute" : "Mute";
  $("deafen").textContent = call.deafened ? "Undeafen" : "Deafen";
  const s = call.deafened ? "deafed" : call.muted ? "muted" : "active";
  await call.com.fn(call.path, call.name, "voice", "set_state", { state: s }).catch((err) => say(explain(err)));
}

// --- emoji --------------------------------------------------------------------------

// The common set Discord and Slack put first; built in, so nothing is
// fetched. Names are what a screen reader says and the picker shows.
const EMOJI = [
  ["😀", "grinning face"], ["😂", "face with tears of joy"], ["🙂", "slightly smiling face"], ["😉", "winking face"],
  ["😊", "smiling face with smiling eyes"], ["😍", "smiling face with heart-eyes"], ["😎", "smiling face with sunglasses"], ["🤔", "thinking face"],
  ["😅", "grinning face with sweat"], ["😢", "crying face"], ["😭", "loudly crying face"], ["😮", "face with open mouth"],
  ["😡", "enraged face"], ["🥳", "partying face"], ["😴", "sleeping face"], ["🙃", "upside-down face"],
  ["👍", "thumbs up"], ["👎", "thumbs down"], ["👏", "clapping hands"], ["🙌", "raising hands"],
  ["🙏", "folded hands"], ["👋", "waving hand"], ["💪", "flexed biceps"], ["👀", "eyes"],
  ["❤️", "red heart"], ["💔", "broken heart"], ["🔥", "fire"], ["✨", "sparkles"],
  ["🎉", "party popper"], ["💯", "hundred points"], ["✅", "check mark button"], ["❌", "cross mark"],
  ["⭐", "star"], ["⚡", "high voltage"], ["☕", "hot beverage"], ["🍕", "pizza"],
  ["🎮", "video game"], ["🎵", "musical note"], ["🚀", "rocket"], ["💡", "light bulb"],
  ["🐛", "bug"], ["🔒", "locked"], ["📌", "pushpin"], ["⏰", "alarm clock"],
  ["🤝", "handshake"], ["🤷", "person shrugging"], ["🫡", "saluting face"], ["💀", "skull"],
];
const EMOJI_COLUMNS = 8; // as in app.css .emoji-picker .grid

// emojiPicker is a grid of emoji buttons for onPick(emoji): one Tab stop,
// arrow keys move, Enter or Space picks, Escape closes. Made for
// reactions too (issue 13); today the composer uses it.
function emojiPicker(onPick, onClose) {
  const label = el("p", { className: "label", ariaLive: "polite" });
  const grid = el("div", { className: "grid" });
  grid.setAttribute("role", "grid");
  const buttons = EMOJI.map(([emoji, name], i) => {
    const b = el("button", { type: "button", textContent: emoji, title: name, ariaLabel: name, tabIndex: i ? -1 : 0 });
    b.onclick = () => onPick(emoji);
    b.onfocus = () => (label.textContent = name);
    return b;
  });
  grid.append(...buttons);
  const box = el("div", { className: "popover emoji-picker" }, label, grid);
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-label", "Emoji");
  const move = (to) => {
    const i = Math.max(0, Math.min(buttons.length - 1, to));
    for (const b of buttons) b.tabIndex = -1;
    buttons[i].tabIndex = 0;
    buttons[i].focus();
  };
  box.onkeydown = (ev) => {
    const i = buttons.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: EMOJI_COLUMNS, ArrowUp: -EMOJI_COLUMNS }[ev.key];
    if (ev.key === "Escape") onClose();
    else if (step && i >= 0) move(i + step);
    else if (ev.key === "Home") move(0);
    else if (ev.key === "End") move(buttons.length - 1);
    else return;
    ev.preventDefault();
    ev.stopPropagation();
  };
  box.focusFirst = () => move(0);
  return box;
}

const emoji = { box: null };

function openEmoji() {
  if (emoji.box) return closeEmoji();
  const button = $("emoji-button");
  const box = (emoji.box = emojiPicker((e) => (insertIntoComposer(e), closeEmoji()), () => closeEmoji()));
  document.body.append(box);
  // Above the button, kept on screen; set through the CSSOM, which the
  // page's CSP allows (a style attribute it would not).
  const r = button.getBoundingClientRect();
  box.style.left = `${Math.max(8, Math.min(r.left, innerWidth - box.offsetWidth - 8))}px`;
  box.style.top = `${Math.max(8, r.top - box.offsetHeight - 8)}px`;
  button.setAttribute("aria-expanded", "true");
  box.focusFirst();
}

function closeEmoji() {
  if (!emoji.box) return;
  emoji.box.remove();
  emoji.box = null;
  $("emoji-button").setAttribute("aria-expanded", "false");
  if (!$("composer").hidden) $("message").focus();
}

// insertIntoComposer puts text where the caret is, replacing a selection.
function insertIntoComposer(text) {
  const input = $("message");
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? start;
  input.setRangeText(text, start, end, "end");
  input.focus();
}

// --- desktop notifications ------------------------------------------------------------

// The permission is asked once, from the button, and the answer kept, so
// the page never asks again on its own.
const NOTIFY_ASKED = "iotad.notifications.asked";
const canNotify = () => "Notification" in window;

function renderNotifyButton() {
  $("notify-button").hidden = !canNotify() || Notification.permission !== "default" || localStorage.getItem(NOTIFY_ASKED) !== null;
}

async function askNotifications() {
  const answer = await Notification.requestPermission();
  localStorage.setItem(NOTIFY_ASKED, answer);
  renderNotifyButton();
  say(answer === "granted" ? "Notifications are on while this page is in the background." : "Notifications stay off.");
}

// wantsNotification is the one place that decides whether a message is
// worth a desktop notification: today anyone else's message while the
// page is hidden. When the server marks mentions, a mention qualifies
// and the rest may not; this is where that goes.
function wantsNotification(com, key, msg) {
  if (!canNotify() || Notification.permission !== "granted") return false;
  if (msg.sender_id === state.me.userID) return false;
  const inView = !document.hidden && view.com === com && view.key === key;
  return !inView && (document.hidden || mentionsMe(msg));
}

function notifyMessage(com, d, msg) {
  const who = person(com, msg.sender_id);
  let n;
  try {
    n = new Notification(`${who.name} in #${d.name} (${com.entry.title})`, { body: msg.message.slice(0, 200), tag: `${com.entry.entryID}/${d.path}/${d.name}` });
  } catch {
    return; // Chrome on Android allows them only from a service worker
  }
  n.onclick = () => {
    window.focus();
    state.current = com;
    render();
    view.open(com, d.path, d.name);
    n.close();
  };
}

// --- administration ----------------------------------------------------------------

// findChannel is the tree node at path/name, or undefined.
function findChannel(tree, path, name) {
  let level = tree;
  for (const part of path ? path.split("/") : []) {
    const next = level[part];
    if (!next || next.codec !== "category") return undefined;
    level = next.data;
  }
  return level[name];
}

// HIDEABLE are the roles a channel can be hidden from: owners see every
// channel, and so do admins, who manage them (PROTOCOL §9 "Private channels").
const HIDEABLE = [["moderator", "moderators"], ["member", "members"]];

// privacyToggles are the lock toggles of one channel: each hides it from
// a role (view: false) and keeps the channel's other overrides as they are.
function privacyToggles(com, path, name, ch, fail) {
  const full = path ? `${path}/${name}` : name;
  const boxes = HIDEABLE.map(([role, label]) => {
    const box = el("input", { type: "checkbox", checked: ch.overrides?.[role]?.view === false, ariaLabel: `Hide ${full} from ${label}` });
    box.onchange = () => {
      const overrides = structuredClone(ch.overrides || {});
      const o = (overrides[role] ||= {});
      if (box.checked) o.view = false;
      else delete o.view;
      if (!Object.keys(o).length) delete overrides[role];
      com.root("set_channel_permissions", { path, name, overrides }).then(() => say(box.checked ? `${full} is hidden from ${label}.` : `${full} is visible to ${label}.`), (err) => {
        box.checked = !box.checked;
        fail(err);
      });
    };
    return el("label", { className: "lock-toggle" }, box, ` 🔒 ${label}`);
  });
  return el("td", { className: "privacy" }, ...boxes);
}

// fillChannels lists every channel of com in table, with rename, move and
// delete. The update of a change may come after its reply, so the table
// is filled again on every interactables_changed.
function fillChannels(com, table) {
  const fail = (err) => say(explain(err));
  table.replaceChildren(el("tr", {}, ...["channel", "kind", "hidden from", ""].map((h) => el("th", { textContent: h }))));
  const listChannels = (obj, path) => {
    for (const [name, ch] of Object.entries(obj)) {
      const full = path ? `${path}/${name}` : name;
      const rename = el("button", { textContent: "rename" });
      rename.onclick = () => {
        const to = prompt(`Rename ${full} to`, name);
        if (to) com.root("rename_channel", { path, name, new_name: to }).then(() => renderAdmin(), fail);
      };
      const move = el("button", { textContent: "move" });
      move.onclick = () => {
        const to = prompt(`Move ${full} into which category? (empty: the top)`, path);
        if (to !== null) com.root("move_channel", { path, name, new_path: to }).then(() => renderAdmin(), fail);
      };
      const del = el("button", { textContent: "delete" });
      del.onclick = () => confirm(`Delete ${full}?`) && com.root("delete_channel", { path, name }).then(() => renderAdmin(), fail);
      table.append(el("tr", {}, el("td", { textContent: full }), el("td", { textContent: ch.codec }), privacyToggles(com, path, name, ch, fail), el("td", {}, rename, move, del)));
      if (ch.codec === "category") listChannels(ch.data, full);
    }
  };
  listChannels(com.tree, "");
}

async function renderAdmin() {
  const com = state.current;
  view.close();
  setPane("channel");
  $("channel-name").textContent = "Administer";
  // The pane is the administration's alone until a channel is opened.
  $("messages").hidden = $("typing").hidden = $("empty").hidden = true;
  const box = $("admin");
  box.hidden = false;
  box.replaceChildren(); // the pane's header says "Administer"
  const fail = (err) => say(explain(err));

  const create = el("form", {}, el("h3", { textContent: "New channel" }));
  const path = el("input", { placeholder: "category path (empty: top)", ariaLabel: "Category path" });
  const name = el("input", { placeholder: "name", ariaLabel: "Channel name", required: true });
  const codec = el("select", { ariaLabel: "Kind" }, ...["text", "voice", "category"].map((k) => el("option", { value: k, textContent: k })));
  create.append(path, name, codec, el("button", { textContent: "Create" }));
  create.onsubmit = (ev) => (ev.preventDefault(), com.root("create_channel", { path: path.value, name: name.value, codec: codec.value }).then(() => say("Created."), fail));
  box.append(create);

  const inv = el("form", {}, el("h3", { textContent: "Invite" }));
  const uses = el("input", { type: "number", min: 1, value: 1, ariaLabel: "Uses" });
  const hours = el("input", { type: "number", min: 1, value: 168, ariaLabel: "Valid for hours" });
  const link = el("input", { readOnly: true, ariaLabel: "Invite link", className: "invite-link" });
  inv.append(el("label", {}, "uses ", uses), el("label", {}, "hours ", hours), el("button", { textContent: "Create invite" }), link);
  inv.onsubmit = async (ev) => {
    ev.preventDefault();
    const r = await com.root("create_invite", { max_uses: +uses.value, expires_in: +hours.value * 3600 }).catch(fail);
    if (r) (link.value = r.data.payload.invite), navigator.clipboard?.writeText(link.value).catch(() => {});
  };
  box.append(inv);

  const channels = el("table", { id: "admin-channels" });
  fillChannels(com, channels);
  box.append(el("h3", { textContent: "Channels" }), el("div", { className: "table" }, channels));

  const invites = await com.root("list_invites").catch(() => null);
  if (invites) {
    const table = el("table", {}, el("tr", {}, ...["invite", "used", "expires", ""].map((h) => el("th", { textContent: h }))));
    for (const i of invites.data.payload.invites) {
      const revoke = el("button", { textContent: "revoke", disabled: !!i.revoked });
      revoke.onclick = () => com.root("revoke_invite", { invite_id: i.invite_id }).then(() => renderAdmin(), fail);
      table.append(el("tr", {}, el("td", { textContent: i.invite_id.slice(0, 8) }), el("td", { textContent: `${i.uses}/${i.max_uses}` }),
        el("td", { textContent: i.revoked ? "revoked" : new Date(i.expires_at).toLocaleString() }), el("td", {}, revoke)));
    }
    box.append(el("h3", { textContent: "Invites" }), el("div", { className: "table" }, table));
  }

  const members = await com.root("list_members").catch(fail);
  if (members) {
    const table = el("table", {}, el("tr", {}, ...["member", "role", "online", ""].map((h) => el("th", { textContent: h }))));
    for (const m of members.data.payload.members) {
      const who = person(com, m.user_id);
      const role = el("select", { ariaLabel: `Role of ${who.name}` }, ...["member", "moderator", "admin", "owner"].map((r) => el("option", { value: r, textContent: r, selected: r === m.role })));
      role.onchange = () => com.root("set_role", { user_id: m.user_id, role: role.value }).then(() => say("Role set."), fail);
      const kick = el("button", { textContent: "kick" });
      kick.onclick = () => com.root("kick", { user_id: m.user_id }).then(() => renderAdmin(), fail);
      const ban = el("button", { textContent: m.banned ? "unban" : "ban" });
      ban.onclick = () => com.root(m.banned ? "unban" : "ban", { user_id: m.user_id }).then(() => renderAdmin(), fail);
      table.append(el("tr", {}, el("td", {}, personNode(who)), el("td", {}, role), el("td", { textContent: m.online ? "yes" : "" }), el("td", {}, kick, ban)));
    }
    box.append(el("h3", { textContent: "Members" }), el("div", { className: "table" }, table));
  }
  const audit = await com.root("audit_log", { amount: 50 }).catch(() => null);
  if (audit) {
    const ol = el("ol", { className: "audit" });
    for (const e of audit.data.payload.entries.reverse()) ol.append(el("li", { textContent: `${new Date(e.time).toLocaleString()} ${person(com, e.actor_id).name} ${e.action} ${e.target}` }));
    box.append(el("h3", { textContent: "Audit log" }), ol);
  }
}

// --- start ----------------------------------------------------------------------

async function start(me) {
  state.me = me;
  state.listKey = await c.listKey(me.privateKey);
  await openIota();
  $("me-person").replaceChildren(personNode(person(null, me.userID)));
  $("login").hidden = true;
  $("app").hidden = false;
}

async function loginWith(text) {
  try {
    const me = c.parseKeyFile(text);
    await start(me);
    if ($("remember").checked) await saveKey({ userID: me.userID, privateKey: c.b64encode(me.privateKey), iotaKey: me.iotaKey });
  } catch (err) {
    say(err.type ? explain(err) : err.message);
  }
}

function wire() {
  wirePins();
  $("login-button").onclick = async () => {
    const f = $("keyfile").files[0];
    loginWith(f ? await f.text() : $("keytext").value);
  };
  $("register-button").onclick = async () => {
    const priv = c.newPrivateKey();
    const sock = new Socket(`${wsBase()}/ws/iota`);
    try {
      await sock.open();
      const r = await sock.request("register", { public_key: c.b64encode(c.publicKey(priv)), token: $("token").value.trim() });
      sock.close();
      const text = c.formatKeyFile(r.data.user_id, priv);
      const a = el("a", { href: URL.createObjectURL(new Blob([text])), download: "iotad.tu" });
      a.click();
      loginWith(text);
    } catch (err) {
      say(err.type ? explain(err) : err.message);
    }
  };
  $("join-button").onclick = () => showJoin($("join-panel").hidden);
  $("join-cancel").onclick = () => (showJoin(false), $("join-button").focus());
  $("join-panel").onkeydown = (ev) => ev.key === "Escape" && (showJoin(false), $("join-button").focus());
  $("emoji-button").onclick = () => openEmoji();
  document.addEventListener("pointerdown", (ev) => {
    if (emoji.box && !emoji.box.contains(ev.target) && ev.target !== $("emoji-button")) closeEmoji();
    if (memberMenu.box && !memberMenu.box.contains(ev.target) && !ev.target.closest?.("#member-list li[data-actionable]")) closeMemberMenu(false);
  });
  $("notify-button").onclick = () => askNotifications();
  renderNotifyButton();
  $("back-button").onclick = () => setPane("nav");
  $("members-back").onclick = () => setPane("channel");
  $("members-button").onclick = () => toggleMembers();
  $("members-button").setAttribute("aria-pressed", String(!matchMedia("(max-width: 960px)").matches));
  // Presence is not pushed (yet): coming back to the page refreshes it,
  // and so does a minute passing while it is in view. One list_members a
  // minute is the price until the server says who comes and goes.
  document.addEventListener("visibilitychange", () => !document.hidden && loadMembers(state.current));
  setInterval(() => !document.hidden && loadMembers(state.current), 60000);
  $("add-community").onsubmit = (ev) => {
    ev.preventDefault();
    addCommunity($("invite").value, $("title").value).then(() => ($("invite").value = $("title").value = ""), (err) => say(err.type ? explain(err) : err.message));
  };
  $("composer").onsubmit = (ev) => {
    ev.preventDefault();
    const input = $("message");
    const text = input.value;
    if (!text.trim() || !view.channel) return;
    input.value = "";
    const payload = { message: text };
    const named = mentionedIn(view.com, text);
    if (named.length) payload.mentions = named;
    if (replying.to) payload.reply_to = replying.to;
    cancelReply();
    view.com.fn(view.channel.path, view.channel.name, "text", "send_message", payload).catch((err) => {
      input.value = text;
      say(err.type === "error_rate_limited" && err.data?.retry_after ? `Slow mode: wait ${Math.ceil(err.data.retry_after / 1000)} s` : explain(err));
    });
  };
  $("attach").onchange = async () => {
    const input = $("attach");
    const files = [...input.files].slice(0, 10);
    input.value = "";
    if (!files.length || !view.channel) return;
    const { com, channel } = view;
    try {
      const ids = [];
      for (const f of files) ids.push((await uploadFile(com, channel, f)).file_id);
      const text = $("message").value;
      $("message").value = "";
      await com.fn(channel.path, channel.name, "text", "send_message", { message: text, attachments: ids });
    } catch (err) {
      say(err.type ? explain(err) : err.message);
    }
  };
  $("profile-button").onclick = async () => {
    const com = state.current;
    if (!com) return;
    const name = prompt("Your display name in this community (empty clears it)", com.profiles.get(state.me.userID)?.display_name || "");
    if (name === null) return;
    await com.root("set_profile", { display_name: name.trim() ? name : null }).catch((err) => say(explain(err)));
  };
  $("avatar-input").onchange = async () => {
    const com = state.current;
    const file = $("avatar-input").files[0];
    $("avatar-input").value = "";
    if (!com || !file || !view.channel) return;
    try {
      const up = await uploadFile(com, view.channel, file);
      await com.root("set_profile", { avatar_file_id: up.file_id });
    } catch (err) {
      say(err.type ? explain(err) : err.message);
    }
  };
  let lastTyping = 0;
  $("message").oninput = () => {
    if (Date.now() - lastTyping > 3000 && view.channel) {
      lastTyping = Date.now();
      view.com.sock.send("function", { codec: "text", path: view.channel.path, name: view.channel.name, function: "typing", payload: {} });
    }
  };
  $("messages").onscroll = () => $("messages").scrollTop < 40 && view.older();
  $("mute").onclick = () => ((call.muted = !call.muted), setVoiceState());
  $("deafen").onclick = () => ((call.deafened = !call.deafened), setVoiceState());
  $("hangup").onclick = () => leaveVoice();
  $("share").onclick = () => shareScreen();
  $("admin-button").onclick = () => renderAdmin();
  $("messages").addEventListener("click", (ev) => ev.target.closest(".who, .msg .avatar") && focusMember(ev.target.closest("li").dataset.sender));
  $("forget").onclick = async () => {
    await forgetKey();
    location.reload();
  };
}

// toggleMembers shows or hides the member column: on a phone it is a
// pane of its own, in between it is off until asked for, on a wide
// screen on until put away.
function toggleMembers() {
  const app = $("app");
  let shown;
  if (matchMedia("(max-width: 700px)").matches) {
    setPane(app.dataset.pane === "members" ? "channel" : "members");
    shown = app.dataset.pane === "members";
  } else if (matchMedia("(max-width: 960px)").matches) shown = app.classList.toggle("members-shown");
  else shown = !app.classList.toggle("members-hidden");
  $("members-button").setAttribute("aria-pressed", String(shown));
}

// focusMember shows someone in the member column, from a click on their
// name or avatar in a message.
function focusMember(userID) {
  const li = $("member-list").querySelector(`li[data-user="${CSS.escape(userID)}"]`);
  if (!li) return;
  li.tabIndex = -1;
  li.scrollIntoView({ block: "nearest" });
  li.focus();
}

// WebCrypto and the microphone exist only in a secure context (https, or
// localhost): say so in words rather than fail on the first key.
if (!window.isSecureContext || !globalThis.crypto?.subtle) {
  const secure = new URL(location.href);
  secure.protocol = "https:";
  $("secure-url").href = $("secure-url").textContent = secure.href;
  $("insecure").hidden = false;
} else {
  boot();
}

function boot() {
  wire();
  loadKey().then(
    (k) => (k ? start({ userID: k.userID, privateKey: c.b64decode(k.privateKey), iotaKey: k.iotaKey }).catch((err) => (($("login").hidden = false), say(err.message))) : ($("login").hidden = false)),
    () => ($("login").hidden = false),
  );
}

// Search (issue 13): the box in the channel header asks the community's
// root function search; results show in a panel above the messages, the
// matched words marked with text nodes, never as HTML.
function markWords(text, words) {
  const out = [];
  const re = /[\p{L}\p{M}\p{N}]+/gu;
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (!words.has(m[0].toLocaleLowerCase())) continue;
    if (m.index > at) out.push(document.createTextNode(text.slice(at, m.index)));
    out.push(el("mark", { textContent: m[0] }));
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

async function runSearch(query) {
  const com = state.current;
  const box = $("search-results");
  if (!com || !query.trim()) return (box.hidden = true);
  const reply = await com.root("search", { query }).catch((err) => (say(explain(err)), null));
  if (!reply || state.current !== com) return;
  const r = reply.data.payload;
  const words = new Set((query.match(/[\p{L}\p{M}\p{N}]+/gu) || []).map((w) => w.toLocaleLowerCase()));
  const close = el("button", { className: "quiet", textContent: "×", ariaLabel: "Close search results" });
  close.onclick = () => (box.hidden = true);
  const head = el("div", { className: "search-head" }, el("span", { textContent: r.messages.length ? `Results for “${query}”` : `Nothing found for “${query}”` }), close);
  const ol = el("ol");
  for (const m of r.messages.slice().reverse()) {
    const who = person(com, m.sender_id);
    const at = new Date(m.send_time);
    const li = el("li", { className: "search-hit", tabIndex: 0 },
      el("div", { className: "head" }, personNode(who), el("span", { className: "where", textContent: `# ${m.name}` }),
        el("time", { dateTime: at.toISOString(), textContent: fullFormat.format(at) })),
      el("div", { className: "text" }, ...markWords(m.message, words)));
    const open = () => ((box.hidden = true), view.open(com, m.path, m.name));
    li.onclick = open;
    li.onkeydown = (ev) => ev.key === "Enter" && open();
    ol.append(li);
  }
  box.replaceChildren(head, ol);
  box.hidden = false;
}

$("search-form").onsubmit = (ev) => (ev.preventDefault(), runSearch($("search").value));

// --- mentions and unread (PROTOCOL §9 "Mentions and unread") -------------------

// takeCounts reads the unread and mention counts a login's tree carries.
function takeCounts(com, tree, path) {
  for (const [name, ch] of Object.entries(tree || {})) {
    if (ch.codec === "category") takeCounts(com, ch.data, path ? `${path}/${name}` : name);
    else if (ch.codec === "text" && "unread" in (ch.data || {})) setCounts(com, `${path}/${name}`, ch.data);
  }
}

// setCounts redraws the tree only when what it shows changed: whether
// the channel has unread messages and how many mention me. A flood of
// messages elsewhere changes that once, not with every message.
function setCounts(com, key, n) {
  const shown = (c) => `${com.unread.has(key)} ${c?.mentions || 0}`;
  const before = shown(com.counts.get(key));
  com.counts.set(key, { unread: n.unread || 0, mentions: n.mentions || 0 });
  if (n.unread) com.unread.add(key);
  else com.unread.delete(key);
  if (state.current === com && shown(com.counts.get(key)) !== before) nextFrame(renderTree);
}

function mentionsMe(msg) {
  return msg.sender_id !== state.me?.userID && (msg.mention_everyone || (msg.mentions || []).includes(state.me?.userID));
}

// countLive is the client's half of the counts: others' messages, and
// among them those that mention me.
function countLive(com, key, msg) {
  if (msg.sender_id === state.me.userID) return;
  const n = com.counts.get(key) || { unread: 0, mentions: 0 };
  setCounts(com, key, { unread: n.unread + 1, mentions: n.mentions + (mentionsMe(msg) ? 1 : 0) });
}

function markRead(com, path, name, messageID) {
  if (!document.hidden) com.fn(path, name, "text", "mark_read", { message_id: messageID }).then((m) => setCounts(com, `${path}/${name}`, m.data.payload), () => {});
}

// mentionedIn is the members a message names as @Name, by the names the
// page shows for them.
function mentionedIn(com, text) {
  const out = [];
  for (const id of com.members.keys()) if (id !== state.me.userID && text.includes(`@${person(com, id).name}`)) out.push(id);
  return out.slice(0, 20);
}

// --- timeouts (PROTOCOL §9 "Slow mode and timeouts") ----------------------------

const RANK = { owner: 4, admin: 3, moderator: 2, member: 1 };

// memberActions lists what the viewer may do to member m, as the default
// permission table allows (docs/PERMISSIONS.md): timeouts and kicks from
// moderator, bans and roles from admin, only on those they outrank. The
// server decides; a table the operator changed shows up as its refusal.
function memberActions(com, m) {
  const mine = RANK[com.role] || 0;
  if (mine < RANK.moderator || mine <= (RANK[m.role] || 0)) return [];
  const name = person(com, m.user_id).name;
  const act = (fn, payload, done) => () => com.root(fn, { user_id: m.user_id, ...payload }).then(() => (done && say(done), loadMembers(com)), (err) => say(explain(err)));
  const out = [];
  for (const [label, duration] of [["1 hour", 3600], ["1 day", 86400]]) out.push({ label: `Time out for ${label}`, run: act("timeout", { duration }) });
  if (m.timeout_until > Date.now()) out.push({ label: "End time out", run: act("remove_timeout", {}) });
  out.push({ label: "Kick", danger: true, confirm: `Kick ${name}? They can join again with an invite.`, run: act("kick", {}, `${name} was kicked.`) });
  if (mine >= RANK.admin) {
    out.push({ label: "Ban", danger: true, confirm: `Ban ${name}? They cannot join again until unbanned.`, run: act("ban", {}, `${name} was banned.`) });
    // An admin names roles up to moderator, the owner up to admin.
    for (const role of ["admin", "moderator", "member"]) {
      if (role !== m.role && RANK[role] < mine) out.push({ label: `Make ${role}`, run: act("set_role", { role }, `${name} is ${role} now.`) });
    }
  }
  return out;
}

// memberControls shows who is timed out and gives the members the viewer
// may act on one "⋯" button: the actions are in its menu, not on every
// row (a clicked row opens it too).
function memberControls(com, li, m) {
  if (m.timeout_until > Date.now()) li.append(el("span", { className: "timed-out", textContent: " timed out", title: `until ${fullFormat.format(new Date(m.timeout_until))}` }));
  if (!memberActions(com, m).length) return;
  const b = el("button", { type: "button", className: "quiet member-more", textContent: "⋯", ariaLabel: `Actions for ${person(com, m.user_id).name}` });
  b.setAttribute("aria-haspopup", "menu");
  b.setAttribute("aria-expanded", String(memberMenu.user === m.user_id));
  b.onclick = (ev) => (ev.stopPropagation(), toggleMemberMenu(com, m.user_id, b));
  li.onclick = () => toggleMemberMenu(com, m.user_id, b);
  li.dataset.actionable = "";
  li.append(b);
}

const memberMenu = { box: null, user: null };

// toggleMemberMenu opens the menu of userID's actions beside button, or
// closes it when it is open already. Arrow keys move, Escape closes and
// gives the focus back to the button.
function toggleMemberMenu(com, userID, button) {
  const same = memberMenu.user === userID;
  closeMemberMenu(false);
  if (same) return;
  const m = com.members.get(userID);
  if (!m) return;
  const items = memberActions(com, m).map((a) => {
    const item = el("button", { type: "button", textContent: a.label, className: a.danger ? "danger" : "", tabIndex: -1 });
    item.setAttribute("role", "menuitem");
    item.onclick = () => {
      closeMemberMenu(true);
      if (!a.confirm || confirm(a.confirm)) a.run();
    };
    return item;
  });
  const box = (memberMenu.box = el("div", { className: "popover member-menu", id: "member-menu" }, ...items));
  box.setAttribute("role", "menu");
  box.setAttribute("aria-label", `Actions for ${person(com, userID).name}`);
  memberMenu.user = userID;
  box.onkeydown = (ev) => {
    const i = items.indexOf(document.activeElement);
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: items.length - 1 }[ev.key];
    if (ev.key === "Escape" || ev.key === "Tab") closeMemberMenu(true);
    else if (to !== undefined) items[(to + items.length) % items.length].focus();
    else return;
    ev.preventDefault();
  };
  document.body.append(box);
  // Left of the button (the member column is at the window's right edge),
  // kept on screen; through the CSSOM, which the page's CSP allows.
  const r = button.getBoundingClientRect();
  box.style.left = `${Math.max(8, Math.min(r.right - box.offsetWidth, innerWidth - box.offsetWidth - 8))}px`;
  box.style.top = `${Math.max(8, Math.min(r.bottom + 4, innerHeight - box.offsetHeight - 8))}px`;
  button.setAttribute("aria-expanded", "true");
  items[0].focus();
}

// closeMemberMenu closes the member menu; refocus gives the focus back to
// its member's "⋯" (the list may have been drawn again meanwhile).
function closeMemberMenu(refocus) {
  if (!memberMenu.box) return;
  const user = memberMenu.user;
  memberMenu.box.remove();
  memberMenu.box = memberMenu.user = null;
  const b = $("member-list").querySelector(`li[data-user="${CSS.escape(user)}"] .member-more`);
  b?.setAttribute("aria-expanded", "false");
  if (refocus) b?.focus();
}
