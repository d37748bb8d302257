package community

import (
	"os"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
)

// TestCommunityKeyIsWrittenWhole: the key file a community's row names is
// complete, 0600, and nothing of the write (a temporary file) is left in
// the key directory. That the file and its name reach the disk before the
// row commits is atomicfile's part, tested there.
func TestCommunityKeyIsWrittenWhole(t *testing.T) {
	s, c, dir := openTest(t, db.SyncNormal)
	raw, err := os.ReadFile(s.keyFile(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, priv, err := icrypto.ParseKeyFile(raw); err != nil || priv.Public() != c.Public {
		t.Fatalf("key file does not hold the community's key: %v", err)
	}
	if st, _ := os.Stat(s.keyFile(c.ID)); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); name[0] == '.' {
			t.Errorf("left in the key directory: %s", name)
		}
	}
}
