package community

import (
	"fmt"
	"unicode/utf8"
)

// MaxEmojiBytes bounds one reaction's emoji sequence (UTF-8 bytes): the
// longest sequences in use (a family with skin tones, a subdivision flag)
// fit well within it.
const MaxEmojiBytes = 32

// CheckEmoji accepts a Unicode emoji sequence as PROTOCOL §9 "Replies,
// reactions and pins" defines it. It is a check of the code points used,
// not of Unicode's list of sequences, which changes every year: a client
// that shows an unknown sequence shows its parts.
func CheckEmoji(s string) error {
	if s == "" || len(s) > MaxEmojiBytes {
		return fmt.Errorf("%w: emoji is 1 to %d bytes", ErrInvalidData, MaxEmojiBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: emoji must be valid UTF-8", ErrInvalidData)
	}
	rs := []rune(s)
	base := false
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case isKeycapBase(r):
			// 0-9 # * only as a keycap: the base, U+FE0F optionally, U+20E3.
			j := i + 1
			if j < len(rs) && rs[j] == 0xFE0F {
				j++
			}
			if j >= len(rs) || rs[j] != 0x20E3 {
				return fmt.Errorf("%w: emoji must not contain letters, digits or punctuation", ErrInvalidData)
			}
			i, base = j, true
		case isPictographic(r):
			base = true
		case r == 0x200D, r == 0xFE0E, r == 0xFE0F, r == 0x20E3,
			r >= 0xE0020 && r <= 0xE007F:
			if !base {
				return fmt.Errorf("%w: emoji must start with an emoji, not a joiner or modifier", ErrInvalidData)
			}
		default:
			return fmt.Errorf("%w: emoji contains U+%04X, which is not part of an emoji", ErrInvalidData, r)
		}
	}
	return nil
}

func isKeycapBase(r rune) bool { return r >= '0' && r <= '9' || r == '#' || r == '*' }

// isPictographic holds the blocks emoji are drawn from (including skin
// tone modifiers U+1F3FB..1F3FF and regional indicators U+1F1E6..1F1FF,
// which lie in U+1F000..1FAFF).
func isPictographic(r rune) bool {
	switch {
	case r == 0x00A9, r == 0x00AE, r == 0x203C, r == 0x2049, r == 0x2122, r == 0x2139,
		r >= 0x2194 && r <= 0x21AA, r >= 0x231A && r <= 0x23FF, r == 0x24C2,
		r >= 0x25A0 && r <= 0x25FF, r >= 0x2600 && r <= 0x27BF, r >= 0x2900 && r <= 0x297F,
		r >= 0x2B00 && r <= 0x2BFF, r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299,
		r >= 0x1F000 && r <= 0x1FAFF:
		return true
	}
	return false
}
