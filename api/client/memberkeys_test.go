package client

import (
	"crypto/rand"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
)

func TestMemberKeyCache(t *testing.T) {
	_, user, _ := icrypto.GenerateKey(rand.Reader)
	c1, _, _ := icrypto.GenerateKey(rand.Reader)
	c2, _, _ := icrypto.GenerateKey(rand.Reader)
	want1, _ := icrypto.MemberKeyForUser(user, c1)
	want2, _ := icrypto.MemberKeyForUser(user, c2)
	var nilCache *MemberKeyCache
	cache := &MemberKeyCache{}
	for _, m := range []*MemberKeyCache{nilCache, cache} {
		for range 2 { // the second round comes from the cache
			if k, err := m.get(user, c1); err != nil || k != want1 {
				t.Fatalf("first community: %v", err)
			}
			if k, err := m.get(user, c2); err != nil || k != want2 {
				t.Fatalf("second community: a cached key for another community: %v", err)
			}
		}
	}
	var lowOrder icrypto.PublicKey
	if _, err := cache.get(user, lowOrder); err == nil {
		t.Fatal("a low-order community key gave a member key")
	}
	if _, err := cache.get(user, lowOrder); err == nil {
		t.Fatal("a refused member key was cached")
	}
}
