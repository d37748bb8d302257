package crypto

import (
	"crypto/rand"
	"errors"
	"testing"
)

// countingReader yields 0, 1, 2, … 255, 0, 1, …: deterministic "randomness"
// in which every byte value is equally common.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

// failingReader is a random source that has run dry.
type failingReader struct{}

var errDry = errors.New("no randomness")

func (failingReader) Read([]byte) (int, error) { return 0, errDry }

// newKeyPair is GenerateKey for tests, which cannot fail with crypto/rand.
func newKeyPair(t testing.TB) (PublicKey, PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}
