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

const v2 = v.login_v2;
const user = c.b64decode(v.user_private);
const frame = (cs, extra) => ({ challenge: cs.challenge_sealed_b64, public_key: v2.ephemeral_public, server_key: v.server_public, login_version: 2, ...extra });
const otherKey = () => c.b64encode(c.publicKey(c.newPrivateKey()));

for (const cs of v2.cases) {
  test(`login v2 ${cs.role}: key schedule, seal and open match the vectors`, async () => {
    const e = c.b64decode(v2.ephemeral_private);
    assert.equal(c.b64encode(c.publicKey(e)), v2.ephemeral_public);
    const { key, nonce } = await c.loginKey(user, v2.ephemeral_public, v.server_public, cs.role);
    assert.equal(hex(key), cs.aes_key_hex);
    assert.equal(hex(nonce), cs.nonce_hex);
    const sealed = await c.sealChallenge(e, c.b64decode(v.server_private), v.user_public, v2.user_id, cs.role, v.challenge_plaintext);
    assert.equal(sealed, cs.challenge_sealed_b64);
    const got = await c.answerChallenge(user, v2.user_id, frame(cs), { role: cs.role, pinned: v.server_public });
    assert.deepEqual(got, { answer: v.challenge_plaintext, serverKey: v.server_public });
    // Trust on first use opens with the offered key and hands it back to pin.
    assert.equal((await c.answerChallenge(user, v2.user_id, frame(cs), { role: cs.role, pinned: "" })).serverKey, v.server_public);
    // A pin in the invite's unpadded base64url is the same key.
    assert.equal((await c.answerChallenge(user, v2.user_id, frame(cs), { role: cs.role, pinned: c.b64url(c.b64decode(v.server_public)) })).answer, v.challenge_plaintext);
  });

  test(`login v2 ${cs.role}: a relayed or altered challenge is refused`, async () => {
    const other = v2.cases.find((x) => x.role !== cs.role).role;
    const refused = (reason, data, opts) => assert.rejects(c.answerChallenge(user, opts.userID ?? v2.user_id, data, { role: cs.role, ...opts }), (err) => {
      assert.ok(err instanceof c.LoginRefused, `${err}`);
      assert.equal(err.reason, reason);
      return true;
    });
    // The other socket's challenge (the Iota's on a community socket, or back).
    await refused("open", frame(cs), { role: other, pinned: v.server_public });
    // Another server's challenge offered under the pinned key.
    const s2 = otherKey();
    await refused("open", frame(cs, { server_key: s2 }), { pinned: s2 });
    // Another server's challenge as it is: its server_key is not the pin.
    await refused("key", frame(cs), { pinned: s2 });
    // Sealed for another user id (AAD).
    await refused("open", frame(cs), { pinned: v.server_public, userID: "someone-else" });
    // Another ephemeral key, a flipped bit, no key at all, a low-order key.
    await refused("open", frame(cs, { public_key: otherKey() }), { pinned: v.server_public });
    const bad = c.b64decode(cs.challenge_sealed_b64);
    bad[0] ^= 1;
    await refused("open", frame(cs, { challenge: c.b64encode(bad) }), { pinned: v.server_public });
    await refused("key", frame(cs, { server_key: undefined }), { pinned: v.server_public });
    await refused("key", frame(cs, { server_key: "AAAA" }), { pinned: "" });
    await refused("open", frame(cs, { server_key: c.b64encode(new Uint8Array(56)) }), { pinned: "" });
    // Version 1, or no version: refused before anything is opened.
    await refused("version", frame(cs, { login_version: 1 }), { pinned: v.server_public });
    await refused("version", frame(cs, { login_version: undefined }), { pinned: v.server_public });
    await refused("version", frame(cs, { login_version: "2" }), { pinned: v.server_public });
  });
}

// The project's own vectors (crypto/testdata/login_v2_vectors.mjs), each
// case with its own keys and ids, a numeric-looking and a non-ASCII one
// among them (the AAD is the id's UTF-8).
const own = JSON.parse(readFileSync(new URL("../../crypto/testdata/login_v2_vectors.json", import.meta.url)));
test("login v2: the project's own vectors", async () => {
  assert.ok(own.cases.length >= 2);
  for (const cs of own.cases) {
    const u = c.b64decode(cs.user_private);
    const { key, nonce } = await c.loginKey(u, cs.ephemeral_public, cs.server_public, cs.role);
    assert.equal(hex(key), cs.aes_key_hex, `${cs.role} ${cs.user_id}`);
    assert.equal(hex(nonce), cs.nonce_hex);
    const sealed = await c.sealChallenge(c.b64decode(cs.ephemeral_private), c.b64decode(cs.server_private), cs.user_public, cs.user_id, cs.role, cs.plaintext);
    assert.equal(sealed, cs.challenge_sealed_b64);
    const data = { challenge: cs.challenge_sealed_b64, public_key: cs.ephemeral_public, server_key: cs.server_public, login_version: 2 };
    assert.equal((await c.answerChallenge(u, cs.user_id, data, { role: cs.role, pinned: cs.server_public })).answer, cs.plaintext);
  }
});

test("login v2: an unknown role is refused", async () => {
  await assert.rejects(c.loginKey(user, v2.ephemeral_public, v.server_public, "calls"), /unknown login role/);
});

test("key file and private_key_hash", async () => {
  const kf = c.parseKeyFile(v.key_file_example + "\r\n");
  assert.equal(kf.userID, "12345678901234");
  assert.equal(kf.iotaKey, undefined);
  assert.equal(c.formatKeyFile(kf.userID, kf.privateKey).trim(), v.key_file_example);
  assert.equal(await c.privateKeyHash(kf.privateKey), v.private_key_hash_hex);
  assert.throws(() => c.parseKeyFile("no separator"));
  assert.throws(() => c.parseKeyFile("id::AAAA"));
});

test("key file with the Iota's key on a second line", () => {
  const url = c.b64url(c.b64decode(v.server_public));
  for (const text of [`${v.key_file_example}\niota_key=${v.server_public}\n`, `${v.key_file_example}\r\niota_key=${url}`]) {
    const kf = c.parseKeyFile(text);
    assert.equal(kf.userID, "12345678901234");
    assert.equal(kf.iotaKey, v.server_public);
  }
  const kf = c.parseKeyFile(v.key_file_example);
  assert.deepEqual(c.parseKeyFile(c.formatKeyFile(kf.userID, kf.privateKey, v.server_public)), { ...kf, iotaKey: v.server_public });
  assert.throws(() => c.parseKeyFile(`${v.key_file_example}\niota_key=AAAA`), /iota_key/);
  assert.throws(() => c.parseKeyFile(`${v.key_file_example}\niota-key=${v.server_public}`), /iota_key/);
  assert.throws(() => c.parseKeyFile(`${v.key_file_example}\niota_key=${v.server_public}\niota_key=${v.server_public}`), /iota_key/);
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
