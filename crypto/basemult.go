package crypto

import (
	"math/big"
	"sync"

	fp "github.com/cloudflare/circl/math/fp448"
)

// X448 public keys by a fixed-base comb on edwards448.
//
// Every login makes a fresh ephemeral key pair (PROTOCOL §3), and circl's
// X448 key generation is a full ladder over the base point. edwards448
// (x² + y² = 1 + d·x²·y², d = −39081) is 4-isogenous to curve448, and the
// isogeny of RFC 7748 §4.2, u = y²/x², sends its base point B to the
// X448 base point u = 5. It is a group homomorphism, so the u-coordinate
// of [k]·5 is (y/x)² of [k]·B, and [k]·B can use tables of multiples of B
// computed once: 113 additions and 4 doublings instead of 448 ladder steps.
//
// The scalar is secret (it is the challenge's key), so the work does not
// depend on it: every digit costs one lookup that reads all eight table
// entries, one conditional negation and one addition, with formulas that
// are complete on edwards448 (a = 1 is a square and d is not), so the
// identity and equal points need no branches either.

// edPoint is a point in extended coordinates: x = X/Z, y = Y/Z, T = X·Y/Z.
type edPoint struct{ X, Y, Z, T fp.Elt }

// edAffine is a table entry: x, y and d·x·y.
type edAffine struct{ x, y, dxy fp.Elt }

const (
	combTables  = 57 // digit positions 0, 2, …, 112 of the signed radix-16 scalar
	combEntries = 8  // 1·, 2·, …, 8· the table's base
)

// comb holds the tables of multiples of B. It is computed on first use
// (4.6 ms, BenchmarkBuildComb) and never changes afterwards: a constant,
// not state.
type comb [combTables][combEntries]edAffine

var combTable = sync.OnceValue(buildComb)

// x448Public is X448(k, 5), the same as circl's x448.KeyGen.
func x448Public(k *[KeySize]byte) [KeySize]byte {
	table := combTable()
	var s [KeySize]byte
	copy(s[:], k[:])
	s[0] &= 252
	s[55] |= 128

	// Signed radix-16 digits e[i] in [-8, 8), and a last one of 0 or 1:
	// k = Σ e[i]·16^i.
	var e [113]int8
	for i, b := range s {
		e[2*i] = int8(b & 15)
		e[2*i+1] = int8(b >> 4)
	}
	var carry int8
	for i := range 112 {
		e[i] += carry
		carry = (e[i] + 8) >> 4
		e[i] -= carry << 4
	}
	e[112] = carry

	// [k]B = 16·Σ_odd e[i]·16^(i-1)·B + Σ_even e[i]·16^i·B, and table j
	// holds the multiples of 16^(2j)·B.
	var h edPoint
	h.setIdentity()
	var t edAffine
	for i := 1; i < 113; i += 2 {
		t.lookup(&table[i/2], e[i])
		h.addAffine(&t)
	}
	for range 4 {
		h.double()
	}
	for i := 0; i < 113; i += 2 {
		t.lookup(&table[i/2], e[i])
		h.addAffine(&t)
	}

	var xInv, ratio, u fp.Elt
	fp.Inv(&xInv, &h.X)
	fp.Mul(&ratio, &h.Y, &xInv)
	fp.Sqr(&u, &ratio)
	var out [KeySize]byte
	fp.ToBytes(out[:], &u)
	return out
}

func (p *edPoint) setIdentity() {
	*p = edPoint{}
	fp.SetOne(&p.Y)
	fp.SetOne(&p.Z)
}

// addAffine is p += q (add-2008-hwcd with a = 1, Z2 = 1).
func (p *edPoint) addAffine(q *edAffine) {
	var a, b, c, e, f, g, h, s1, s2 fp.Elt
	fp.Mul(&a, &p.X, &q.x)
	fp.Mul(&b, &p.Y, &q.y)
	fp.Mul(&c, &p.T, &q.dxy)
	fp.Add(&s1, &p.X, &p.Y)
	fp.Add(&s2, &q.x, &q.y)
	fp.Mul(&e, &s1, &s2)
	fp.Sub(&e, &e, &a)
	fp.Sub(&e, &e, &b)
	fp.Sub(&f, &p.Z, &c)
	fp.Add(&g, &p.Z, &c)
	fp.Sub(&h, &b, &a)
	p.set(&e, &f, &g, &h)
}

// double is p = 2p (dbl-2008-hwcd with a = 1).
func (p *edPoint) double() {
	var a, b, c, e, f, g, h fp.Elt
	fp.Sqr(&a, &p.X)
	fp.Sqr(&b, &p.Y)
	fp.Sqr(&c, &p.Z)
	fp.Add(&c, &c, &c)
	fp.Add(&e, &p.X, &p.Y)
	fp.Sqr(&e, &e)
	fp.Sub(&e, &e, &a)
	fp.Sub(&e, &e, &b)
	fp.Add(&g, &a, &b)
	fp.Sub(&f, &g, &c)
	fp.Sub(&h, &a, &b)
	p.set(&e, &f, &g, &h)
}

// set is the last step the addition and doubling formulas share.
func (p *edPoint) set(e, f, g, h *fp.Elt) {
	fp.Mul(&p.X, e, f)
	fp.Mul(&p.Y, g, h)
	fp.Mul(&p.T, e, h)
	fp.Mul(&p.Z, f, g)
}

// lookup sets t to digit·(the table's base), digit in [-8, 8], reading
// every entry whatever the digit.
func (t *edAffine) lookup(row *[combEntries]edAffine, digit int8) {
	negative := uint(uint8(digit) >> 7)
	abs := uint(int(digit) * (1 - 2*int(negative)))
	*t = edAffine{}
	fp.SetOne(&t.y) // the identity: x = 0, y = 1, d·x·y = 0
	for m := range combEntries {
		hit := uint((uint64(abs^uint(m+1)) - 1) >> 63) // 1 when abs == m+1
		fp.Cmov(&t.x, &row[m].x, hit)
		fp.Cmov(&t.y, &row[m].y, hit)
		fp.Cmov(&t.dxy, &row[m].dxy, hit)
	}
	// -(x, y) = (-x, y)
	var nx, ndxy fp.Elt
	fp.Neg(&nx, &t.x)
	fp.Neg(&ndxy, &t.dxy)
	fp.Cmov(&t.x, &nx, negative)
	fp.Cmov(&t.dxy, &ndxy, negative)
}

// buildComb fills the table: entry [j][m] is (m+1)·16^(2j)·B in affine form.
func buildComb() *comb {
	var zero, d39081, d fp.Elt
	d39081[0], d39081[1] = 39081&0xff, 39081>>8
	fp.Sub(&d, &zero, &d39081)

	// RFC 8032's base point of edwards448.
	var base edPoint
	base.X = eltFromDecimal("224580040295924300187604334099896036246789641632564134246125461686950415467406032909029192869357953282578032075146446173674602635247710")
	base.Y = eltFromDecimal("298819210078481492676017930443930673437544040154080242095928241372331506189835876003536878655418784733982303233503462500531545062832660")
	fp.SetOne(&base.Z)
	fp.Mul(&base.T, &base.X, &base.Y)

	table := new(comb)
	for j := range combTables {
		baseAffine := base.affine(&d)
		multiple := base
		for m := range combEntries {
			if m > 0 {
				multiple.addAffine(&baseAffine)
			}
			table[j][m] = multiple.affine(&d)
		}
		for range 8 { // the next table's base is 16² times this one's
			base.double()
		}
	}
	return table
}

func (p *edPoint) affine(edD *fp.Elt) edAffine {
	var q edAffine
	var zInv fp.Elt
	fp.Inv(&zInv, &p.Z)
	fp.Mul(&q.x, &p.X, &zInv)
	fp.Mul(&q.y, &p.Y, &zInv)
	fp.Mul(&q.dxy, &q.x, &q.y)
	fp.Mul(&q.dxy, &q.dxy, edD)
	return q
}

func eltFromDecimal(s string) fp.Elt {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("crypto: bad constant " + s)
	}
	var e fp.Elt
	be := n.FillBytes(make([]byte, fp.Size))
	for i := range e {
		e[i] = be[fp.Size-1-i]
	}
	return e
}
