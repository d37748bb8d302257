package crypto

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestKeyFile(t *testing.T) {
	_, priv := newKeyPair(t)
	file := FormatKeyFile("u1", priv)
	if want := "u1::" + EncodePrivateKey(priv) + "\n"; string(file) != want {
		t.Fatalf("FormatKeyFile = %q, want %q", file, want)
	}
	key := EncodePrivateKey(priv)
	good := map[string]string{
		"as written":          string(file),
		"no final newline":    "u1::" + key,
		"CRLF":                "u1::" + key + "\r\n",
		"surrounding space":   "\n  u1::" + key + "  \n\n",
		"URL-safe key":        "u1::" + base64.URLEncoding.EncodeToString(priv[:]),
		"unpadded key":        "u1::" + base64.RawStdEncoding.EncodeToString(priv[:]),
		"space before key":    "u1:: " + key,
		"numeric Tensamin id": "12345678901234::" + key,
	}
	for name, s := range good {
		id, p, err := ParseKeyFile([]byte(s))
		wantID := "u1"
		if strings.HasPrefix(s, "1234") {
			wantID = "12345678901234"
		}
		if err != nil || id != wantID || p != priv {
			t.Errorf("%s: ParseKeyFile(%q) = %q, %v", name, s, id, err)
		}
	}

	bad := map[string]string{
		"empty":            "",
		"blank":            " \r\n ",
		"no separator":     "u1",
		"single colon":     "u1:" + key,
		"empty id":         "::" + key,
		"empty key":        "u1::",
		"short key":        "u1::AAAA",
		"57-byte key":      "u1::" + base64.StdEncoding.EncodeToString(make([]byte, 57)),
		"two lines":        "u1::" + key + "\nu2::" + key,
		"key split":        "u1::" + key[:30] + "\n" + key[30:],
		"id then key line": "u1::\n" + key,
		"third colon":      "u1:::" + key,
	}
	for name, s := range bad {
		_, _, err := ParseKeyFile([]byte(s))
		if !errors.Is(err, ErrMalformedKeyFile) {
			t.Errorf("%s: ParseKeyFile(%q) = %v, want ErrMalformedKeyFile", name, s, err)
			continue
		}
		if errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: a key file error must not look like a bad public key: %v", name, err)
		}
		if strings.Contains(err.Error(), key[:20]) {
			t.Errorf("%s: the error repeats the private key: %v", name, err)
		}
	}
}

func TestPrivateKeyHash(t *testing.T) {
	_, priv := newKeyPair(t)
	h := PrivateKeyHash(priv)
	if len(h) != 64 || strings.ToLower(h) != h {
		t.Fatalf("hash %q: want 64 lowercase hex digits", h)
	}
	_, other := newKeyPair(t)
	if PrivateKeyHash(other) == h {
		t.Fatal("two keys hash alike")
	}
}

func TestKeyFileIotaLine(t *testing.T) {
	iotaPub, _ := newKeyPair(t)
	_, priv := newKeyPair(t)
	kf, err := ReadKeyFile(FormatKeyFileWithIota("u1", priv, iotaPub))
	if err != nil || kf.UserID != "u1" || kf.Private != priv || kf.IotaKey == nil || *kf.IotaKey != iotaPub {
		t.Fatalf("round trip: %+v, %v", kf, err)
	}
	if kf, err := ReadKeyFile(FormatKeyFile("u1", priv)); err != nil || kf.IotaKey != nil {
		t.Fatalf("one-line file: %+v, %v", kf, err)
	}
	line := string(FormatKeyFile("u1", priv))
	bad := map[string]string{
		"other second line": line + "hello\n",
		"low-order key":     line + "iota_key=" + PublicKey{}.String() + "\n",
		"short key":         line + "iota_key=AAAA\n",
		"three lines":       line + "iota_key=" + iotaPub.String() + "\n" + line,
		"empty":             "\n\n",
	}
	for name, text := range bad {
		if _, err := ReadKeyFile([]byte(text)); !errors.Is(err, ErrMalformedKeyFile) {
			t.Errorf("%s: %v, want ErrMalformedKeyFile", name, err)
		}
	}
	crlf := strings.ReplaceAll(string(FormatKeyFileWithIota("u1", priv, iotaPub)), "\n", "\r\n")
	if kf, err := ReadKeyFile([]byte(crlf)); err != nil || kf.IotaKey == nil {
		t.Fatalf("CRLF file: %v", err)
	}
}
