package crypto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// memberInfo is the HKDF info of member keys; changing it changes every
// member key, so a new scheme gets a new version instead.
const memberInfo = "iotad member v1"

// MemberKey is the secret a community shares with one member (the seed's
// "shared secret for each user"): both sides compute it from their X448
// keys, nobody stores it, and removing the member removes it.
func MemberKey(communityPriv PrivateKey, userPub PublicKey) ([32]byte, error) {
	return memberKey(communityPriv, userPub)
}

// MemberKeyForUser is the member's side of MemberKey; the two are equal.
func MemberKeyForUser(userPriv PrivateKey, communityPub PublicKey) ([32]byte, error) {
	return memberKey(userPriv, communityPub)
}

func memberKey(priv PrivateKey, pub PublicKey) ([32]byte, error) {
	shared, err := SharedSecret(priv, pub)
	if err != nil {
		return [32]byte{}, fmt.Errorf("crypto: member key: %w", err)
	}
	return MemberKeyFromShared(shared), nil
}

// MemberKeyFromShared derives the member key from X448(community, user),
// the same secret a version-2 login seals with, so a server that caches
// that secret per member pays for no X448 here.
func MemberKeyFromShared(shared [KeySize]byte) [32]byte {
	okm, err := hkdf.Key(sha256.New, shared[:], nil, memberInfo, 32)
	if err != nil {
		// Only a length over 255 hash sizes fails, and 32 is a constant.
		panic("crypto: hkdf: " + err.Error())
	}
	return [32]byte(okm)
}

// Proof shows a member that the community holds the key they pinned: the
// standard base64 HMAC-SHA256 of the login challenge under the member key.
func Proof(memberKey [32]byte, challengePlaintext string) string {
	return base64.StdEncoding.EncodeToString(proofMAC(memberKey, challengePlaintext))
}

// VerifyProof checks a proof in constant time.
func VerifyProof(memberKey [32]byte, challengePlaintext, proof string) bool {
	got, err := decodeBase64(proof)
	if err != nil {
		return false
	}
	return hmac.Equal(got, proofMAC(memberKey, challengePlaintext))
}

func proofMAC(memberKey [32]byte, challengePlaintext string) []byte {
	m := hmac.New(sha256.New, memberKey[:])
	m.Write([]byte(challengePlaintext))
	return m.Sum(nil)
}
