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
  constructor(type, detail) {
    super(detail);
    this.type = type;
    this.detail = detail;
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
          if (m.type.startsWith("error")) p.reject(new WireError(m.type, m.data.detail));
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
    const li = el("li", { tabIndex: 0, textContent: e.title, title: e.address });
    li.dataset.entry = e.entryID;
    if (state.current?.entry.entryID === e.entryID) li.className = "on";
    const remove = el("button", { className: "quiet", textContent: "×", title: "Remove from my list", ariaLabel: `Remove ${e.title}` });
    remove.onclick = async (ev) => {
      ev.stopPropagation();
      await state.iota.request("remove_community", { entry_id: e.entryID }).catch((err) => say(explain(err)));
      loadCommunities();
    };
    li.append(" ", remove);
    li.onclick = li.onkeydown = (ev) => {
      if (ev.type === "keydown" && ev.key !== "Enter") return;
      selectCommunity(e);
    };
    ul.append(li);
  }
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
  await state.iota.request("add_community", sealed);
  await loadCommunities();
  const added = state.entries.find((e) => e.address === com.entry.address);
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
    this.collapsed = new Set();
    this.typing = new Map();
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
    switch (d.result) {
      case "interactables_changed":
        this.tree = d.payload.interactables;
        if (state.current === this && $("admin-channels")) fillChannels(this, $("admin-channels"));
        break;
      case "role_changed":
        if (d.payload.user_id === state.me.userID) this.role = d.payload.role;
        break;
      case "message_live":
        if (view.channel && view.key === key) view.append(d.payload);
        else this.unread.add(key);
        break;
      case "message_edited":
      case "message_deleted":
        if (view.key === key) view.change(d.result, d.payload);
        break;
      case "typing":
        this.typing.set(`${key}|${d.payload.user_id}`, Date.now());
        setTimeout(renderTyping, 4100);
        break;
      case "user_changed":
      case "user_left":
        voiceUpdate(this, d);
        break;
    }
    if (state.current === this && d.result !== "typing" && !d.result.startsWith("message_")) renderTree();
    if (d.result === "message_live" || d.result === "typing") renderTyping(), renderTree();
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
  view.close();
  render();
}

function render() {
  renderCommunities();
  $("community-name").textContent = state.current?.entry.title || "";
  $("admin-button").hidden = !state.current || state.current.role === "member";
  renderTree();
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
      const label = el("span", { tabIndex: 0, textContent: (ch.codec === "voice" ? "♪ " : ch.codec === "text" ? "# " : "") + name });
      label.setAttribute("role", "button");
      if (view.key === key) label.classList.add("on");
      if (com.unread.has(key)) li.classList.add("unread");
      const activate = () => {
        if (ch.codec === "category") com.collapsed.has(key) ? com.collapsed.delete(key) : com.collapsed.add(key), renderTree();
        else if (ch.codec === "text") view.open(com, path, name);
        else if (ch.codec === "voice") joinVoice(com, path, name);
      };
      label.onclick = activate;
      label.onkeydown = (ev) => ev.key === "Enter" && activate();
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
          const li = el("li", { className: speaking ? "speaking" : "", textContent: `${short(uid)}${u.state !== "active" ? ` (${u.state})` : ""}` });
          if (u.streaming && uid !== state.me.userID && call.sock) {
            const watch = el("button", { textContent: "watch", ariaLabel: `Watch ${short(uid)}'s screen` });
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

const short = (id) => (id === state.me.userID ? "you" : String(id).slice(0, 8));

function renderTyping() {
  const com = state.current;
  const now = Date.now();
  const who = [];
  if (com) {
    for (const [k, t] of com.typing) {
      if (now - t > 4000) com.typing.delete(k);
      else if (k.startsWith(`${view.key}|`)) who.push(short(k.split("|")[1]));
    }
  }
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
}

// --- a text channel: history paged with before, a bounded number of nodes -----

const MAX_NODES = 300;
const view = {
  channel: null,
  key: "",
  async open(com, path, name) {
    this.close();
    this.com = com;
    this.channel = { path, name };
    this.key = `${path}/${name}`;
    com.unread.delete(this.key);
    $("admin").hidden = true;
    $("channel-name").textContent = `# ${name}`;
    $("composer").hidden = false;
    $("messages").replaceChildren();
    renderTree();
    const m = await com.fn(path, name, "text", "get_messages", { loaded_messages: 0, amount: 50 }).catch((err) => say(explain(err)));
    if (!m) return;
    this.more = m.data.payload.has_more;
    for (const msg of m.data.payload.messages) this.append(msg, true);
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
    $("message").focus();
  },
  close() {
    this.channel = null;
    this.key = "";
    $("composer").hidden = true;
    $("messages").replaceChildren();
    $("channel-name").textContent = "";
  },
  node(msg) {
    const li = el("li");
    li.dataset.id = msg.message_id;
    li.dataset.sender = msg.sender_id;
    const when = new Date(msg.send_time).toLocaleTimeString();
    li.append(el("span", { className: "who", textContent: short(msg.sender_id) }), el("span", { className: "body", textContent: msg.message }), " ",
      el("span", { className: "when", textContent: when }), el("span", { className: "edited", textContent: msg.edited_at ? " (edited)" : "" }));
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
    if (mine || ["owner", "admin", "moderator"].includes(this.com.role)) {
      const del = el("button", { textContent: "delete", ariaLabel: "Delete message" });
      del.onclick = () => this.com.fn(this.channel.path, this.channel.name, "text", "delete_message", { message_id: msg.message_id }).catch((err) => say(explain(err)));
      actions.append(del);
    }
    li.prepend(actions);
    return li;
  },
  append(msg, quiet) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(this.node(msg));
    while (list.children.length > MAX_NODES) list.firstElementChild.remove(), (this.more = true);
    if (atBottom || quiet) list.scrollTop = list.scrollHeight;
  },
  change(result, p) {
    const li = $("messages").querySelector(`li[data-id="${p.message_id}"]`);
    if (!li) return;
    if (result === "message_deleted") li.remove();
    else (li.querySelector(".body").textContent = p.message), (li.querySelector(".edited").textContent = " (edited)");
  },
  async older() {
    if (!this.channel || !this.more || this.loading) return;
    const first = $("messages").firstElementChild;
    if (!first) return;
    this.loading = true;
    const m = await this.com.fn(this.channel.path, this.channel.name, "text", "get_messages", { before: first.dataset.id, amount: 50 }).catch((err) => say(explain(err)));
    this.loading = false;
    if (!m) return;
    const list = $("messages");
    const height = list.scrollHeight;
    const frag = document.createDocumentFragment();
    for (const msg of m.data.payload.messages) frag.append(this.node(msg));
    list.prepend(frag);
    this.more = m.data.payload.has_more;
    // Keep the number of nodes bounded: drop the newest; the newest page
    // comes back when the channel is opened again.
    while (list.children.length > MAX_NODES) list.lastElementChild.remove();
    list.scrollTop = list.scrollHeight - height;
  },
};

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
    const { ticket, ice_servers } = t.data.payload;
    call.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const sock = new Socket(`${com.url}ws/calls/`);
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

// --- administration ----------------------------------------------------------------

// fillChannels lists every channel of com in table, with rename, move and
// delete. The update of a change may come after its reply, so the table
// is filled again on every interactables_changed.
function fillChannels(com, table) {
  const fail = (err) => say(explain(err));
  table.replaceChildren(el("tr", {}, ...["channel", "kind", ""].map((h) => el("th", { textContent: h }))));
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
      table.append(el("tr", {}, el("td", { textContent: full }), el("td", { textContent: ch.codec }), el("td", {}, rename, move, del)));
      if (ch.codec === "category") listChannels(ch.data, full);
    }
  };
  listChannels(com.tree, "");
}

async function renderAdmin() {
  const com = state.current;
  view.close();
  const box = $("admin");
  box.hidden = false;
  box.replaceChildren(el("h2", { textContent: "Administer" }));
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
  inv.append("uses ", uses, " hours ", hours, el("button", { textContent: "Create invite" }), link);
  inv.onsubmit = async (ev) => {
    ev.preventDefault();
    const r = await com.root("create_invite", { max_uses: +uses.value, expires_in: +hours.value * 3600 }).catch(fail);
    if (r) (link.value = r.data.payload.invite), navigator.clipboard?.writeText(link.value).catch(() => {});
  };
  box.append(inv);

  const channels = el("table", { id: "admin-channels" });
  fillChannels(com, channels);
  box.append(el("h3", { textContent: "Channels" }), channels);

  const invites = await com.root("list_invites").catch(() => null);
  if (invites) {
    const table = el("table", {}, el("tr", {}, ...["invite", "used", "expires", ""].map((h) => el("th", { textContent: h }))));
    for (const i of invites.data.payload.invites) {
      const revoke = el("button", { textContent: "revoke", disabled: !!i.revoked });
      revoke.onclick = () => com.root("revoke_invite", { invite_id: i.invite_id }).then(() => renderAdmin(), fail);
      table.append(el("tr", {}, el("td", { textContent: i.invite_id.slice(0, 8) }), el("td", { textContent: `${i.uses}/${i.max_uses}` }),
        el("td", { textContent: i.revoked ? "revoked" : new Date(i.expires_at).toLocaleString() }), el("td", {}, revoke)));
    }
    box.append(el("h3", { textContent: "Invites" }), table);
  }

  const members = await com.root("list_members").catch(fail);
  if (members) {
    const table = el("table", {}, el("tr", {}, ...["member", "role", "online", ""].map((h) => el("th", { textContent: h }))));
    for (const m of members.data.payload.members) {
      const role = el("select", { ariaLabel: `Role of ${short(m.user_id)}` }, ...["member", "moderator", "admin", "owner"].map((r) => el("option", { value: r, textContent: r, selected: r === m.role })));
      role.onchange = () => com.root("set_role", { user_id: m.user_id, role: role.value }).then(() => say("Role set."), fail);
      const kick = el("button", { textContent: "kick" });
      kick.onclick = () => com.root("kick", { user_id: m.user_id }).then(() => renderAdmin(), fail);
      const ban = el("button", { textContent: m.banned ? "unban" : "ban" });
      ban.onclick = () => com.root(m.banned ? "unban" : "ban", { user_id: m.user_id }).then(() => renderAdmin(), fail);
      table.append(el("tr", {}, el("td", { textContent: short(m.user_id), title: m.user_id }), el("td", {}, role), el("td", { textContent: m.online ? "yes" : "" }), el("td", {}, kick, ban)));
    }
    box.append(el("h3", { textContent: "Members" }), table);
  }
  const audit = await com.root("audit_log", { amount: 50 }).catch(() => null);
  if (audit) {
    const ol = el("ol", { className: "audit" });
    for (const e of audit.data.payload.entries.reverse()) ol.append(el("li", { textContent: `${new Date(e.time).toLocaleString()} ${short(e.actor_id)} ${e.action} ${e.target}` }));
    box.append(el("h3", { textContent: "Audit log" }), ol);
  }
}

// --- start ----------------------------------------------------------------------

async function start(me) {
  state.me = me;
  state.listKey = await c.listKey(me.privateKey);
  await openIota();
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
    view.com.fn(view.channel.path, view.channel.name, "text", "send_message", { message: text }).catch((err) => ((input.value = text), say(explain(err))));
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
  $("forget").onclick = async () => {
    await forgetKey();
    location.reload();
  };
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
