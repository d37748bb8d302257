// The page's crypto against the shared test vectors (the project's copy in
// crypto/testdata), so that the page and the Go code agree byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as c from "../crypto.js";

const v = JSON.parse(readFileSync(new URL("../../crypto/testdata/vectors.json", import.meta.url)));
const hex = (b) => Buffer.from(b).toString("hex");

test("keys and shared secret", () => {
  const user = c.b64decode(v.user_private);
  const server = c.b64decode(v.server_private);
  assert.equal(c.b64encode(c.publicKey(user)), v.user_public);
  assert.equal(c.b64encode(c.publicKey(server)), v.server_public);
  assert.equal(hex(c.sharedSecret(server, v.user_public)), v.x448_shared_hex);
  assert.equal(hex(c.sharedSecret(user, v.server_public)), v.x448_shared_hex);
});

test("challenge key, seal and open", async () => {
  const user = c.b64decode(v.user_private);
  const server = c.b64decode(v.server_private);
  const { key, nonce } = await c.challengeKey(c.sharedSecret(server, v.user_public));
  assert.equal(hex(key), v.aes_key_hex);
  assert.equal(hex(nonce), v.nonce_hex);
  assert.equal(await c.sealChallenge(server, v.user_public, v.challenge_plaintext), v.challenge_sealed_b64);
  assert.equal(await c.openChallenge(user, { challenge: v.challenge_sealed_b64, public_key: v.server_public }), v.challenge_plaintext);
});

test("key file and private_key_hash", async () => {
  const kf = c.parseKeyFile(v.key_file_example + "\r\n");
  assert.equal(kf.userID, "12345678901234");
  assert.equal(c.formatKeyFile(kf.userID, kf.privateKey).trim(), v.key_file_example);
  assert.equal(await c.privateKeyHash(kf.privateKey), v.private_key_hash_hex);
  assert.throws(() => c.parseKeyFile("no separator"));
  assert.throws(() => c.parseKeyFile("id::AAAA"));
});

test("low-order public keys are refused", () => {
  const user = c.b64decode(v.user_private);
  assert.throws(() => c.sharedSecret(user, c.b64encode(new Uint8Array(56))));
  const one = new Uint8Array(56);
  one[0] = 1;
  assert.throws(() => c.sharedSecret(user, c.b64encode(one)));
});

test("sealing binds the field and the key", async () => {
  const priv = c.newPrivateKey();
  const key = await c.listKey(priv);
  const a = await c.seal(key, "community_address", "tensamin://x:1984/");
  assert.notEqual(a, await c.seal(key, "community_address", "tensamin://x:1984/"));
  assert.equal(await c.open(key, "community_address", a), "tensamin://x:1984/");
  await assert.rejects(c.open(key, "community_title", a));
  await assert.rejects(c.open(await c.listKey(c.newPrivateKey()), "community_address", a));
  await assert.rejects(c.open(await c.settingsKey(priv), "community_address", a));
});

test("opens what the Go code sealed", async () => {
  const s = JSON.parse(readFileSync(new URL("../../crypto/testdata/seal_vectors.json", import.meta.url)));
  const priv = c.b64decode(s.private_key);
  assert.equal(await c.open(await c.listKey(priv), s.address_field, s.address_sealed), s.address);
  assert.equal(await c.open(await c.settingsKey(priv), s.settings_field, s.settings_sealed), s.settings);
});
