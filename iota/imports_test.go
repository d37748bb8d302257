package iota

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCannotOpenSealedData fails if the iota package, or anything it
// imports, can reach the half of the crypto that opens sealed data.
func TestCannotOpenSealedData(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", "github.com/iotad/iotad/iota").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	has := func(pkg string) bool {
		for _, d := range deps {
			if d == pkg {
				return true
			}
		}
		return false
	}
	if has("github.com/iotad/iotad/crypto/seal") {
		t.Fatal("package iota can reach crypto/seal, which opens sealed community lists")
	}
	// The check must be able to see our own packages at all.
	if !has("github.com/iotad/iotad/crypto") {
		t.Fatal("go list did not list github.com/iotad/iotad/crypto: the check above proves nothing")
	}
}
