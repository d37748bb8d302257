package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "iotad.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// configLines runs `iotad config` and returns its lines by key.
func configLines(t *testing.T, args ...string) map[string]string {
	t.Helper()
	out := mustRun(t, append([]string{"config"}, args...)...)
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		key, _, _ := strings.Cut(l, " = ")
		lines[key] = l
	}
	return lines
}

// TestConfigLayers: each layer wins over the one before it: defaults, the
// file, IOTAD_*, flags; and `iotad config` says which one each value came
// from.
func TestConfigLayers(t *testing.T) {
	path := writeConfig(t, "# settings\naddr = 127.0.0.1:7000\nlog-level = warn  # quiet\nmax-connections = 10\ncommunity-name = \"Home # 2\"\n")
	t.Setenv("IOTAD_LOG_LEVEL", "error")
	t.Setenv("IOTAD_MAX_CONNECTIONS", "20")
	got := configLines(t, "--config", path, "--max-connections", "30")
	want := map[string]string{
		"addr":            "addr = 127.0.0.1:7000  # config " + path + ":2",
		"log-level":       "log-level = error  # env IOTAD_LOG_LEVEL",
		"max-connections": "max-connections = 30  # flag",
		"community-name":  `community-name = "Home # 2"  # config ` + path + ":5",
		"sync":            "sync = full  # default",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestConfigFromTheEnvironment: IOTAD_CONFIG names the file, for a unit's
// Environment= line; the admin commands read the same file and skip the
// keys that are serve's alone.
func TestConfigFromTheEnvironment(t *testing.T) {
	data := t.TempDir()
	path := writeConfig(t, "data = "+data+"\naddr = :1984\nturn-addr = :3478\n")
	t.Setenv("IOTAD_CONFIG", path)
	if got := configLines(t)["data"]; got != "data = "+data+"  # config "+path+":1" {
		t.Fatalf("data: %q", got)
	}
	mustRun(t, "user", "add", "--name", "from-config")
	if out := mustRun(t, "user", "list", "--data", data); !strings.Contains(out, "from-config") {
		t.Fatalf("the user did not go to the data directory of the config file: %q", out)
	}
}

// TestConfigUnknownKeysAreNamed: a misspelt key is an error naming it and
// its line, not a setting silently ignored.
func TestConfigUnknownKeysAreNamed(t *testing.T) {
	path := writeConfig(t, "addr = :1984\nmax-conections = 10\n\nturn_secret = x\n")
	_, _, err := runCmd(t, "config", "--config", path)
	if err == nil || !strings.Contains(err.Error(), `"max-conections" (line 2), "turn_secret" (line 4; keys are spelt like the flags: turn-secret)`) {
		t.Fatalf("unknown key: %v", err)
	}
	for _, bad := range []struct{ body, want string }{
		{"addr\n", "line 1: want key = value"},
		{"addr = 1\naddr = 2\n", "line 2: addr is set again (first on line 1)"},
		{"max-connections = many\n", ":1: max-connections"},
		{`community-name = "open`, "line 1: community-name: bad quoted value"},
		{"config = other.conf\n", "cannot name another"},
	} {
		_, _, err := runCmd(t, "serve", "--config", writeConfig(t, bad.body))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want %q", bad.body, err, bad.want)
		}
	}
}

// TestConfigMasksSecrets: a secret given in the file or the environment
// is never printed.
func TestConfigMasksSecrets(t *testing.T) {
	t.Setenv("IOTAD_TURN_SECRET", "hunter2-very-secret")
	out := mustRun(t, "config")
	if strings.Contains(out, "hunter2") {
		t.Fatalf("the secret was printed:\n%s", out)
	}
	if !strings.Contains(out, "turn-secret = ********  # env IOTAD_TURN_SECRET, masked") {
		t.Fatalf("no masked line:\n%s", out)
	}
}

// TestEveryCommandsFlagsAreConfigKeys: the config loader learns the flags
// of every command and verb by asking them, with no list to keep.
func TestEveryCommandsFlagsAreConfigKeys(t *testing.T) {
	names := strings.Join(flagNames(), " ")
	for _, f := range []string{"addr", "data", "turn-secret", "out", "in", "server", "role", "config"} {
		if !strings.Contains(" "+names+" ", " "+f+" ") {
			t.Errorf("%q is not a config key; keys: %s", f, names)
		}
	}
}

// TestConfigOutputReadsBack: what `iotad config` prints is a config file
// that gives the same settings.
func TestConfigOutputReadsBack(t *testing.T) {
	out := mustRun(t, "config", "--community-name", " spaced # name ", "--allowed-origins", `a"b`)
	values, err := parseConfig([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if v := values["community-name"].value; v != " spaced # name " {
		t.Fatalf("community-name read back as %q", v)
	}
	if v := values["allowed-origins"].value; v != `a"b` {
		t.Fatalf("allowed-origins read back as %q", v)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("addr = :1984\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		values, err := parseConfig(raw)
		if err != nil {
			return
		}
		// Whatever parses, printed again, parses to the same values.
		var b strings.Builder
		for k, v := range values {
			b.WriteString(k + " = " + formatConfigValue(v.value) + "\n")
		}
		again, err := parseConfig([]byte(b.String()))
		if err != nil {
			t.Fatalf("reprinted %q: %v", b.String(), err)
		}
		for k, v := range values {
			if again[k].value != v.value {
				t.Fatalf("%s: %q became %q", k, v.value, again[k].value)
			}
		}
	})
}
