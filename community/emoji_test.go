package community

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestCheckEmoji(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"👍", true},
		{"👍🏽", true},
		{"❤️", true},
		{"1️⃣", true},
		{"#⃣", true},
		{"👨‍👩‍👧", true},
		{"🇫🇷", true},
		{"🏴󠁧󠁢󠁳󠁣󠁴󠁿", true},
		{"", false},
		{"a", false},
		{"1", false},
		{"1️", false},
		{"👍a", false},
		{"\u200d👍", false},
		{"\ufe0f", false},
		{" 👍", false},
		{"\xff", false},
		{"👍👍👍👍👍👍👍👍👍", false}, // 36 bytes
	} {
		err := CheckEmoji(tc.in)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidData) {
			t.Errorf("CheckEmoji(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzEmoji(f *testing.F) {
	f.Add("👍")
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckEmoji(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("CheckEmoji(%q): %v is not ErrInvalidData", s, err)
			}
			return
		}
		if !utf8.ValidString(s) || len(s) == 0 || len(s) > MaxEmojiBytes {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if r < 0x80 && !isKeycapBase(r) {
				t.Fatalf("accepted ASCII %q in %q", r, s)
			}
		}
	})
}
