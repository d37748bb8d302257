package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/iotad/iotad/internal/db"
)

// The config file (--config FILE, or IOTAD_CONFIG) holds one setting a line:
//
//	# comment
//	addr = :443
//	domain = chat.example.org   # a comment may follow a value
//	community-name = "Home # 2"  # quoted as in Go when it holds # or edge spaces
//
// A key is a flag's name; its value is what the flag would be given. Blank
// lines and lines starting with # are skipped. A key may appear once. A key
// that no iotad command has is an error naming it and its line; a key that
// another command has (a file shared by serve and `iotad user add`) is
// left for that command.

// configValue is one line's value, with its line for error messages.
type configValue struct {
	value string
	line  int
}

// maxConfigSize bounds what parseConfig reads: a config file is a few
// hundred bytes, and a mistaken path (a database, a log) should fail fast.
const maxConfigSize = 1 << 20

// parseConfig reads the lines of a config file.
func parseConfig(raw []byte) (map[string]configValue, error) {
	if len(raw) > maxConfigSize {
		return nil, fmt.Errorf("larger than %d bytes: not a config file", maxConfigSize)
	}
	out := map[string]configValue{}
	for i, line := range strings.Split(string(raw), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		key = strings.TrimSpace(key)
		if !validKey(key) {
			return nil, fmt.Errorf("line %d: %q is not a flag name", n, key)
		}
		value, err := configValueText(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		if prev, dup := out[key]; dup {
			return nil, fmt.Errorf("line %d: %s is set again (first on line %d)", n, key, prev.line)
		}
		out[key] = configValue{value: value, line: n}
	}
	return out, nil
}

// validKey accepts flag names: letters, digits and dashes, a letter first;
// underscores too, so that an environment-style key is reported as an
// unknown key with the flag it means.
func validKey(key string) bool {
	if key == "" || !unicode.IsLetter(rune(key[0])) {
		return false
	}
	for _, r := range key {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// configValueText takes a value off what follows "=": a Go-quoted string,
// or bare text up to a " #" comment.
func configValueText(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", fmt.Errorf("bad quoted value: %w", err)
		}
		rest := strings.TrimSpace(s[len(q):])
		if rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text after the quoted value: %q", rest)
		}
		return strconv.Unquote(q)
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	} else if i := strings.Index(s, "\t#"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s), nil
}

// formatConfigValue writes v so that parseConfig reads it back unchanged.
func formatConfigValue(v string) string {
	unprintable := strings.IndexFunc(v, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "#\"") || unprintable {
		return strconv.Quote(v)
	}
	return v
}

// secretWords mark the flags whose values `iotad config` masks. Flags named
// for a key (--tls-key, --key) hold a file's path, not the key, and are
// shown; so is --acme-email, which the operator gave and ACME publishes to
// no one but the CA.
var secretWords = []string{"secret", "password", "passphrase", "token", "credential"}

func isSecretFlag(name string) bool {
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// configCmd prints serve's effective settings, one key a line, in the
// config file's own format, each with where its value came from.
func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintln(stderr, "usage: iotad config [--config FILE] [serve's flags]\n\nprints the settings serve would run with, each with its source (default, config FILE:LINE, env IOTAD_…, flag);\nvalues of flags named for a secret, password, passphrase, token or credential are masked")
			return flag.ErrHelp
		}
	}
	err := run(ctx, append(append([]string{"serve"}, args...), argEffective), io.Discard, stderr)
	var fe *flagSetError
	if !errors.As(err, &fe) {
		if err == nil {
			err = errors.New("serve did not report its flags")
		}
		return err
	}
	var b bytes.Buffer
	fe.fs.VisitAll(func(f *flag.Flag) {
		source := fe.sources[f.Name]
		if source == "" {
			source = "default"
		}
		value := formatConfigValue(f.Value.String())
		if f.Name == "db" { // a postgres:// URL may carry a password
			value = formatConfigValue(db.Redact(f.Value.String()))
		}
		if isSecretFlag(f.Name) && f.Value.String() != "" {
			value, source = "********", source+", masked"
		}
		fmt.Fprintf(&b, "%s = %s  # %s\n", f.Name, value, source)
	})
	_, err = stdout.Write(b.Bytes())
	return err
}

var (
	allFlagsOnce sync.Once
	allFlags     map[string]bool
)

// anyCommandHasFlag reports whether some iotad command has a flag named
// name. Each command is asked for its flag set (argFlagNames), and each
// "noun verb" command for its verbs (sub answers argFlagNames with them),
// so a flag or a verb added anywhere becomes a config key with no list to
// keep.
func anyCommandHasFlag(name string) bool {
	allFlagsOnce.Do(func() {
		allFlags = map[string]bool{}
		var walk func(path []string)
		walk = func(path []string) {
			err := run(context.Background(), append(append([]string(nil), path...), argFlagNames), io.Discard, io.Discard)
			var fe *flagSetError
			var ve *verbsError
			switch {
			case errors.As(err, &fe):
				fe.fs.VisitAll(func(f *flag.Flag) { allFlags[f.Name] = true })
			case errors.As(err, &ve):
				for _, v := range ve.verbs {
					walk(append(path, v))
				}
			}
		}
		for _, c := range commands {
			if c.hasFlags {
				walk(append([]string{c.name}, c.prefix...))
			}
		}
	})
	return allFlags[name]
}

// flagNames lists the keys anyCommandHasFlag knows, for tests.
func flagNames() []string {
	anyCommandHasFlag("")
	var out []string
	for n := range allFlags {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
