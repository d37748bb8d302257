package crypto

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("12345678901234::AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4I=\n"))
	f.Add([]byte("a::b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, priv, err := ParseKeyFile(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedKeyFile) {
				t.Fatalf("error %v does not wrap ErrMalformedKeyFile", err)
			}
			return
		}
		id2, priv2, err := ParseKeyFile(FormatKeyFile(id, priv))
		if err != nil || id2 != id || priv2 != priv {
			t.Fatalf("round trip of %q: %q %v", data, id2, err)
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	f.Add("x19oowNJbjwsbgGoIQRE/UpqCww3pU3AIkovPAS05XdHUw1MmzFThgiTxVqzp3IBZKOJUMtEnf0=")
	f.Add("x19oowNJbjwsbgGoIQRE_UpqCww3pU3AIkovPAS05XdHUw1MmzFThgiTxVqzp3IBZKOJUMtEnf0")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := DecodeKey(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("error %v does not wrap ErrMalformedKey", err)
			}
			return
		}
		if back, err := DecodeKey(PublicKey(k).String()); err != nil || back != k {
			t.Fatalf("round trip of %q: %v", s, err)
		}
		pub, err := ParsePublicKey(s)
		if err != nil && !errors.Is(err, ErrLowOrder) {
			t.Fatalf("ParsePublicKey(%q) = %v after DecodeKey accepted it", s, err)
		}
		if err == nil && pub != PublicKey(k) {
			t.Fatalf("ParsePublicKey and DecodeKey disagree on %q", s)
		}
		// The list of low-order points must say what X448 itself says.
		_, probe := SharedSecret(PrivateKey{0: 1}, PublicKey(k))
		if errors.Is(probe, ErrLowOrder) != errors.Is(err, ErrLowOrder) {
			t.Fatalf("ParsePublicKey(%q) = %v, but X448 gives %v", s, err, probe)
		}
	})
}

func FuzzVerifyTicket(f *testing.F) {
	secret := []byte("fuzz secret")
	tk, err := NewTicket(&countingReader{}, "call", "user", time.UnixMilli(2e12))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(SignTicket(secret, tk))
	f.Add("AAAA")
	now := time.UnixMilli(1e12)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := VerifyTicket(secret, s, now)
		if err != nil {
			if !errors.Is(err, ErrBadTicket) && !errors.Is(err, ErrTicketExpired) {
				t.Fatalf("error %v is neither ErrBadTicket nor ErrTicketExpired", err)
			}
			return
		}
		// One ticket, one text: anything else verifying would be a forgery
		// or a malleable encoding.
		if SignTicket(secret, got) != s {
			t.Fatalf("a verified ticket does not re-sign to itself: %q", s)
		}
	})
}

func FuzzOpenChallenge(f *testing.F) {
	f.Add("lFmbNpWlksQmOtu+rw0/s9qNVoUk+L6Pa+i7gxEExs34uQeUIWBrI/fkevuVIZgh")
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	sPub, sPriv, err := GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	uPub, uPriv, err := GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := SealChallenge(sPriv, uPub, []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, s string) {
		plain, err := OpenChallenge(uPriv, sPub, s)
		if err != nil {
			if !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("error %v does not wrap ErrBadChallenge", err)
			}
			return
		}
		// Only our own sealing opens; forging another is breaking AES-GCM.
		if string(plain) != "AbCdEfGhIjKlMnOpQrStUvWxYz012345" {
			t.Fatalf("%q opened to %q", s, plain)
		}
	})
}

func FuzzReadKeyFile(f *testing.F) {
	f.Add([]byte("u::AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4I=\niota_key=x19oowNJbjwsbgGoIQRE/UpqCww3pU3AIkovPAS05XdHUw1MmzFThgiTxVqzp3IBZKOJUMtEnf0=\n"))
	f.Add([]byte("u::b\r\n\r\niota_key=\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ReadKeyFile(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedKeyFile) {
				t.Fatalf("error %v does not wrap ErrMalformedKeyFile", err)
			}
			return
		}
		out := FormatKeyFile(kf.UserID, kf.Private)
		if kf.IotaKey != nil {
			if kf.IotaKey.lowOrder() {
				t.Fatal("a low-order iota_key was accepted")
			}
			out = FormatKeyFileWithIota(kf.UserID, kf.Private, *kf.IotaKey)
		}
		back, err := ReadKeyFile(out)
		if err != nil || back.UserID != kf.UserID || back.Private != kf.Private || (back.IotaKey == nil) != (kf.IotaKey == nil) {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}

// FuzzOpenChallengeV2 feeds hostile sealed text and user ids: only the
// genuine challenge opens, and every failure is ErrBadChallenge.
func FuzzOpenChallengeV2(f *testing.F) {
	uPub, uPriv, _ := GenerateKey(rand.Reader)
	sPub, sPriv, _ := GenerateKey(rand.Reader)
	ePub, ePriv, _ := GenerateKey(rand.Reader)
	const plain, user = "AbCdEfGhIjKlMnOpQrStUvWxYz012345", "5f0c8a3e-1d2b-4c6a-9e7f-0a1b2c3d4e5f"
	static, _ := SharedSecret(sPriv, uPub)
	l := LoginV2{Role: RoleCommunity, UserID: user, Ephemeral: ePub, Server: sPub}
	sealed, err := SealChallengeV2(ePriv, static, uPub, l, []byte(plain))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, user, false)
	f.Add(sealed, user, true)
	f.Add("", "", false)
	f.Fuzz(func(t *testing.T, s, userID string, iotaRole bool) {
		l := l
		l.UserID = userID
		if iotaRole {
			l.Role = RoleIota
		}
		got, err := OpenChallengeV2(uPriv, l, s)
		if err != nil {
			if !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("error %v does not wrap ErrBadChallenge", err)
			}
			return
		}
		if string(got) != plain || userID != user || iotaRole {
			t.Fatalf("%q for %q (iota %v) opened to %q", s, userID, iotaRole, got)
		}
	})
}
