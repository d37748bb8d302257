// The page's cryptography, PROTOCOL §3: X448 from the vendored noble code
// (WebCrypto has none), HKDF, HMAC and AES-GCM from WebCrypto. It runs in
// the browser and, for the unit tests, in Node.
import { x448 } from "./vendor/noble-x448.js";

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder();

export function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// b64decode accepts standard and URL-safe base64, padded or not.
export function b64decode(text) {
  let s = String(text).trim().replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64url(bytes) {
  return b64encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function key56(text, what) {
  const k = b64decode(text);
  if (k.length !== 56) throw new Error(`${what} must be 56 bytes`);
  return k;
}

// parseKeyFile reads a key file: the Tensamin line <user_id>::<base64 key>,
// then optionally iota_key=<base64>, the Iota's identity key to pin
// (PROTOCOL §3). Any other line is refused rather than ignored, so that a
// mistyped pin never silently falls back to trust on first use.
export function parseKeyFile(text) {
  const lines = String(text).split(/\r?\n/).map((l) => l.trim()).filter((l) => l);
  const first = lines.shift() || "";
  const i = first.indexOf("::");
  if (i <= 0) throw new Error("not a key file: want <user_id>::<private key>");
  const out = { userID: first.slice(0, i).trim(), privateKey: key56(first.slice(i + 2), "the private key") };
  for (const line of lines) {
    if (!line.startsWith("iota_key=") || out.iotaKey) throw new Error("not a key file: after the key, only one iota_key=<base64> line may follow");
    out.iotaKey = b64encode(key56(line.slice("iota_key=".length), "the iota_key"));
  }
  return out;
}

export function formatKeyFile(userID, privateKey, iotaKey) {
  return `${userID}::${b64encode(privateKey)}\n` + (iotaKey ? `iota_key=${iotaKey}\n` : "");
}

// sameKey compares two base64 keys by their bytes, so that padding and the
// URL-safe alphabet (invites use it) do not matter.
export function sameKey(a, b) {
  const x = key56(a, "a key");
  const y = key56(b, "a key");
  return x.every((v, i) => v === y[i]);
}

export function publicKey(privateKey) {
  return x448.getPublicKey(privateKey);
}

export function newPrivateKey() {
  return crypto.getRandomValues(new Uint8Array(56));
}

// sharedSecret refuses low-order points (noble throws on an all-zero result).
export function sharedSecret(privateKey, publicKeyB64) {
  return x448.getSharedSecret(privateKey, key56(publicKeyB64, "a public key"));
}

async function hkdf(ikm, info, bytes, salt = new Uint8Array(0)) {
  const k = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: enc.encode(info) }, k, bytes * 8);
  return new Uint8Array(bits);
}

const concat = (a, b) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

// LOGIN_VERSION is the only login this page speaks. Version 1 opened any
// challenge sent to it, so one server could relay another's (PROTOCOL §3).
export const LOGIN_VERSION = 2;
const roles = new Set(["iota", "community"]);

// loginKey derives a version 2 challenge's AES key and nonce:
// ikm = X448(U,E) ‖ X448(U,S) (112 bytes), salt = E_pub ‖ S_pub,
// info = "iotad login v2 " + role, okm = HKDF-SHA256(44) = key(32) ‖ nonce(12).
// Both halves of ikm use our private key, so only the holder of S_priv
// (or of ours) can seal a challenge we can open.
export async function loginKey(privateKey, ephemeralB64, serverB64, role) {
  if (!roles.has(role)) throw new Error(`unknown login role ${JSON.stringify(role)}`);
  const e = key56(ephemeralB64, "the challenge's public_key");
  const s = key56(serverB64, "the server key");
  const ikm = concat(x448.getSharedSecret(privateKey, e), x448.getSharedSecret(privateKey, s));
  const okm = await hkdf(ikm, `iotad login v2 ${role}`, 44, concat(e, s));
  return { key: okm.slice(0, 32), nonce: okm.slice(32, 44) };
}

// LoginRefused ends a login before any answer is sent. reason is
// "version" (not login version 2), "key" (server_key is not the pinned key)
// or "open" (the challenge was not sealed for us, this role and that key).
export class LoginRefused extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "LoginRefused";
    this.reason = reason;
  }
}

// answerChallenge checks a challenge frame's data against the key we pinned
// (pinned may be empty only for trust on first use) and opens it with the
// pinned key, never the one the frame offers. It returns the answer and the
// server key it was opened with, for the caller to pin.
export async function answerChallenge(privateKey, userID, data, { role, pinned }) {
  if (data?.login_version !== LOGIN_VERSION) {
    throw new LoginRefused("version", `the server offered login version ${JSON.stringify(data?.login_version)}, not ${LOGIN_VERSION}`);
  }
  let offered;
  try {
    offered = b64encode(key56(data.server_key, "server_key"));
  } catch (err) {
    throw new LoginRefused("key", `the challenge's server_key is not a key: ${err.message}`);
  }
  if (pinned && !sameKey(pinned, offered)) throw new LoginRefused("key", "the challenge's server_key is not the pinned key");
  const serverKey = pinned ? b64encode(key56(pinned, "the pinned key")) : offered;
  try {
    const { key, nonce } = await loginKey(privateKey, data.public_key, serverKey, role);
    const k = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
    const plain = await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: enc.encode(String(userID)) }, k, b64decode(data.challenge));
    return { answer: dec.decode(plain), serverKey };
  } catch (err) {
    throw new LoginRefused("open", `the challenge does not open for this ${role} and key: ${err.message}`);
  }
}

// sealChallenge is the server's side of version 2, for the tests: the
// same key schedule seen from E_priv and S_priv.
export async function sealChallenge(ephemeralPrivate, serverPrivate, userPublicB64, userID, role, plaintext) {
  const u = key56(userPublicB64, "the user key");
  const e = x448.getPublicKey(ephemeralPrivate);
  const s = x448.getPublicKey(serverPrivate);
  const ikm = concat(x448.getSharedSecret(ephemeralPrivate, u), x448.getSharedSecret(serverPrivate, u));
  const okm = await hkdf(ikm, `iotad login v2 ${role}`, 44, concat(e, s));
  const k = await subtle.importKey("raw", okm.slice(0, 32), "AES-GCM", false, ["encrypt"]);
  const ct = await subtle.encrypt({ name: "AES-GCM", iv: okm.slice(32, 44), additionalData: enc.encode(String(userID)) }, k, enc.encode(plaintext));
  return b64encode(new Uint8Array(ct));
}

// verifyProof checks that the community holds the key we know it by.
export async function verifyProof(privateKey, communityPublicB64, answer, proof) {
  const memberKey = await hkdf(sharedSecret(privateKey, communityPublicB64), "iotad member v1", 32);
  const k = await subtle.importKey("raw", memberKey, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  return subtle.verify("HMAC", k, b64decode(proof), enc.encode(answer));
}

// Sealing keys are derived from the private key and never leave the page.
export async function listKey(privateKey) {
  return subtle.importKey("raw", await hkdf(privateKey, "iotad community list v1", 32), "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function settingsKey(privateKey) {
  return subtle.importKey("raw", await hkdf(privateKey, "iotad settings v1", 32), "AES-GCM", false, ["encrypt", "decrypt"]);
}

// seal returns base64(nonce ‖ AES-GCM(plaintext)) with the field name as AAD.
export async function seal(key, field, plaintext) {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: enc.encode(field) }, key, enc.encode(plaintext)));
  const out = new Uint8Array(12 + ct.length);
  out.set(nonce);
  out.set(ct, 12);
  return b64encode(out);
}

export async function open(key, field, sealed) {
  const raw = b64decode(sealed);
  if (raw.length < 28) throw new Error("sealed field too short");
  const plain = await subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12), additionalData: enc.encode(field) }, key, raw.slice(12));
  return dec.decode(plain);
}

// privateKeyHash is Tensamin's private_key_hash.
export async function privateKeyHash(privateKey) {
  const sum = new Uint8Array(await subtle.digest("SHA-256", enc.encode(b64encode(privateKey))));
  return [...sum].map((b) => b.toString(16).padStart(2, "0")).join("");
}
