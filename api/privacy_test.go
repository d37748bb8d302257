package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/crypto/seal"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestNoPlaintextAddressStored seals a known community address the way a
// client does, stores, replaces and lists it through the socket, and then
// scans the database, its WAL and the server's debug log: the plaintext is
// nowhere. Two positive controls show that the scan does see what is there.
func TestNoPlaintextAddressStored(t *testing.T) {
	if dbtest.FromEnv().Name == dbtest.Postgres.Name {
		t.Skip("scans the SQLite files; on PostgreSQL the server's files are not the test's to read")
	}
	env := newEnv(t, nil)
	u := env.newUser()
	c := env.iota(u)
	ctx := ctxT(t)
	canary := make([]byte, 8)
	rand.Read(canary)
	address := "tensamin://privacy-canary-" + hex.EncodeToString(canary) + ".example:1984/?invite=secret"
	title := "Canary " + hex.EncodeToString(canary)

	id, _, err := c.AddCommunity(ctx, u.Priv, client.Community{Address: address, Title: title, Position: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AddCommunity(ctx, u.Priv, client.Community{EntryID: id, Address: address + "&v=2", Title: title, Position: "1.3"}); err != nil {
		t.Fatal(err)
	}
	sealedSetting, _ := seal.Seal(rand.Reader, seal.SettingsKey(u.Priv), "payload", `{"last_community":"`+address+`"}`)
	if _, err := c.Request(ctx, "settings_save", map[string]any{"settings_name": "ui", "payload": sealedSetting}); err != nil {
		t.Fatal(err)
	}
	list, _, err := c.Communities(ctx, u.Priv)
	if err != nil || len(list) != 1 || list[0].Address != address+"&v=2" {
		t.Fatalf("list %+v %v", list, err)
	}
	m, _ := c.Request(ctx, "get_communities", nil)
	stored := decode[struct {
		Communities []struct {
			Address string `json:"community_address"`
		} `json:"communities"`
	}](t, m).Communities[0].Address

	// Positive control: something written unsealed is found.
	control := "unsealed-control-" + hex.EncodeToString(canary)
	if _, err := c.Request(ctx, "settings_save", map[string]any{"settings_name": "control", "payload": control}); err != nil {
		t.Fatal(err)
	}

	var files [][]byte
	for _, name := range []string{"iotad.db", "iotad.db-wal"} {
		b, err := os.ReadFile(filepath.Join(env.dir, name))
		if err != nil && name == "iotad.db" {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	all := bytes.Join(append(files, env.logs.Bytes()), nil)
	if !bytes.Contains(all, []byte(stored)) {
		t.Fatal("control: the sealed address is not in the database files, so the scan reads nothing")
	}
	if !bytes.Contains(all, []byte(control)) {
		t.Fatal("control: an unsealed value is not found, so the scan reads nothing")
	}
	for _, secret := range []string{address, "privacy-canary-" + hex.EncodeToString(canary), title} {
		for i, b := range append(files, env.logs.Bytes()) {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("the plaintext %q is in %s", secret, []string{"the database", "the WAL", "the log"}[i])
			}
		}
	}
}
