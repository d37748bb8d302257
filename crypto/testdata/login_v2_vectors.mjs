// Makes login_v2_vectors.json with node's OpenSSL, a second implementation
// of PROTOCOL §3 login version 2, so that the Go code is checked against
// values it did not compute itself. Run: node crypto/testdata/login_v2_vectors.mjs
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";

// PKCS#8 and SPKI prefixes of an X448 key (OID 1.3.101.111).
const pkcs8Prefix = Buffer.from("3046020100300506032b656f043a0438", "hex");
const spkiPrefix = Buffer.from("3042300506032b656f033900", "hex");

const privKey = (raw) => crypto.createPrivateKey({ key: Buffer.concat([pkcs8Prefix, raw]), format: "der", type: "pkcs8" });
const pubKey = (raw) => crypto.createPublicKey({ key: Buffer.concat([spkiPrefix, raw]), format: "der", type: "spki" });
const rawPublic = (raw) => crypto.createPublicKey(privKey(raw)).export({ format: "der", type: "spki" }).subarray(spkiPrefix.length);
const x448 = (priv, pub) => crypto.diffieHellman({ privateKey: privKey(priv), publicKey: pubKey(pub) });

function seal({ userPriv, serverPriv, ephPriv, role, userID, plaintext }) {
  const userPub = rawPublic(userPriv), serverPub = rawPublic(serverPriv), ephPub = rawPublic(ephPriv);
  const ikm = Buffer.concat([x448(ephPriv, userPub), x448(serverPriv, userPub)]);
  // The user's side must agree, or the vector is wrong before Go sees it.
  const ikmUser = Buffer.concat([x448(userPriv, ephPub), x448(userPriv, serverPub)]);
  if (!ikm.equals(ikmUser)) throw new Error("X448 sides disagree");
  const salt = Buffer.concat([ephPub, serverPub]);
  const info = "iotad login v2 " + role;
  const okm = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, info, 44));
  const key = okm.subarray(0, 32), nonce = okm.subarray(32, 44);
  const c = crypto.createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.from(userID, "utf8"));
  const sealed = Buffer.concat([c.update(plaintext, "utf8"), c.final(), c.getAuthTag()]);
  const b64 = (b) => b.toString("base64");
  return {
    role, user_id: userID, plaintext,
    user_private: b64(userPriv), user_public: b64(userPub),
    server_private: b64(serverPriv), server_public: b64(serverPub),
    ephemeral_private: b64(ephPriv), ephemeral_public: b64(ephPub),
    ikm_hex: ikm.toString("hex"), salt_hex: salt.toString("hex"), info,
    aes_key_hex: key.toString("hex"), nonce_hex: nonce.toString("hex"),
    challenge_sealed_b64: b64(sealed),
  };
}

// Scalars are stored unclamped, as key files keep them: all-ones bytes make
// sure both sides clamp (RFC 7748) rather than use the bytes as they are.
const ones = Buffer.alloc(56, 0xff);
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const text = () => Array.from(crypto.randomBytes(32), (b) => alphabet[b % 62]).join("");
const cases = [];
for (const [role, userID, userPriv] of [
  ["iota", "5f0c8a3e-1d2b-4c6a-9e7f-0a1b2c3d4e5f", crypto.randomBytes(56)],
  ["community", "5f0c8a3e-1d2b-4c6a-9e7f-0a1b2c3d4e5f", crypto.randomBytes(56)],
  ["community", "1234567890", crypto.randomBytes(56)],
  ["iota", "ünïcødé-user", ones],
  ["community", "01890a5d-ac96-774b-bcce-b302099a8057", ones],
]) {
  cases.push(seal({ userPriv, serverPriv: crypto.randomBytes(56), ephPriv: crypto.randomBytes(56), role, userID, plaintext: text() }));
}
const out = {
  about: "PROTOCOL.md §3 login version 2, computed by crypto/testdata/login_v2_vectors.mjs with node " +
    process.version + " (OpenSSL " + process.versions.openssl + "), not by the Go code under test.",
  cases,
};
writeFileSync(new URL("login_v2_vectors.json", import.meta.url), JSON.stringify(out, null, 1) + "\n");
