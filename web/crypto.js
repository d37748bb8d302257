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

// parseKeyFile reads a Tensamin .tu key file: <user_id>::<base64 key>.
export function parseKeyFile(text) {
  const t = String(text).trim();
  const i = t.indexOf("::");
  if (i <= 0) throw new Error("not a key file: want <user_id>::<private key>");
  return { userID: t.slice(0, i).trim(), privateKey: key56(t.slice(i + 2), "the private key") };
}

export function formatKeyFile(userID, privateKey) {
  return `${userID}::${b64encode(privateKey)}\n`;
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

async function hkdf(ikm, info, bytes) {
  const k = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode(info) }, k, bytes * 8);
  return new Uint8Array(bits);
}

// challengeKey derives the AES key and nonce of a login challenge.
export async function challengeKey(shared) {
  const okm = await hkdf(shared, "x448-aes-gcm-no-overhead", 44);
  return { key: okm.slice(0, 32), nonce: okm.slice(32, 44) };
}

// openChallenge answers a challenge {challenge, public_key} with our key.
export async function openChallenge(privateKey, challenge) {
  const shared = sharedSecret(privateKey, challenge.public_key);
  const { key, nonce } = await challengeKey(shared);
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  const plain = await subtle.decrypt({ name: "AES-GCM", iv: nonce }, k, b64decode(challenge.challenge));
  return dec.decode(plain);
}

// sealChallenge is the server's side, used by the tests against the vectors.
export async function sealChallenge(serverPrivate, userPublicB64, plaintext) {
  const { key, nonce } = await challengeKey(sharedSecret(serverPrivate, userPublicB64));
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  return b64encode(new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce }, k, enc.encode(plaintext))));
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
