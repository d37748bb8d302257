package crypto

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cloudflare/circl/dh/x448"
)

// circlPublic is X448(k, 5) by circl's ladder: the reference.
func circlPublic(k [KeySize]byte) [KeySize]byte {
	var pub, sec x448.Key = x448.Key{}, x448.Key(k)
	x448.KeyGen(&pub, &sec)
	return pub
}

func TestCombAgreesWithTheLadder(t *testing.T) {
	// Scalars with a structure: the comb's digits and carries at their edges.
	order, _ := new(big.Int).SetString("181709681073901722637330951972001133588410340171829515070372549795146003961539585716195755291692375963310293709091662304773755859649779", 10)
	special := map[string][KeySize]byte{"zero": {}, "all ones": {}}
	for i := range KeySize {
		k := special["all ones"]
		k[i] = 0xff
		special["all ones"] = k
	}
	alt := [KeySize]byte{}
	for i := range alt {
		alt[i] = 0x88 // every nibble 8: a carry out of every digit
	}
	special["nibbles of 8"] = alt
	for i := range alt {
		alt[i] = 0x77
	}
	special["nibbles of 7"] = alt
	// 4·ℓ is a valid clamped scalar: both must give the identity's u = 0.
	special["4 times the order"] = [KeySize]byte(u(new(big.Int).Lsh(order, 2)))
	special["the order"] = [KeySize]byte(u(order))
	for name, k := range special {
		if got, want := x448Public(&k), circlPublic(k); got != want {
			t.Errorf("%s: comb %x, ladder %x", name, got, want)
		}
	}
	// And many random ones.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var k [KeySize]byte
		for j := range k {
			k[j] = byte(r.Uint32())
		}
		if got, want := x448Public(&k), circlPublic(k); got != want {
			t.Fatalf("random scalar %d (%x): comb %x, ladder %x", i, k, got, want)
		}
	}
}

func BenchmarkPublicComb(b *testing.B) {
	k := [KeySize]byte{1, 2, 3}
	x448Public(&k)
	for b.Loop() {
		x448Public(&k)
	}
}

func BenchmarkPublicLadder(b *testing.B) {
	k := [KeySize]byte{1, 2, 3}
	for b.Loop() {
		circlPublic(k)
	}
}

// FuzzCombPublic: for any scalar, the comb and circl's ladder agree.
func FuzzCombPublic(f *testing.F) {
	f.Add(make([]byte, KeySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var k [KeySize]byte
		copy(k[:], b)
		if got, want := x448Public(&k), circlPublic(k); got != want {
			t.Fatalf("scalar %x: comb %x, ladder %x", k, got, want)
		}
	})
}

func BenchmarkBuildComb(b *testing.B) {
	for b.Loop() {
		buildComb()
	}
}
