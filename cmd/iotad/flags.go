package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// newFlags returns a flag set whose every flag is also an IOTAD_* environment
// variable and a key of the --config file (config.go); parse applies them.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "read settings from this file (key = value, keys named like the flags; env "+envName("config")+")")
	return fs
}

// envName is the environment variable of a flag: --max-connections is
// IOTAD_MAX_CONNECTIONS.
func envName(flagName string) string {
	return "IOTAD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Two arguments no person can type (exec's arguments are C strings) let
// `iotad config` and the config loader ask a command for its flags without
// running it: parse, seeing one last, returns the flag set in an error.
const (
	argFlagNames = "\x00iotad-flag-names"
	argEffective = "\x00iotad-effective"
)

// flagSetError carries a command's flag set out of parse, with where each
// value came from when the layers were applied (argEffective).
type flagSetError struct {
	fs      *flag.FlagSet
	sources map[string]string
}

func (e *flagSetError) Error() string { return "iotad: flag set of " + e.fs.Name() }

// parse applies, the later winning: the defaults, the --config file (or
// IOTAD_CONFIG), the IOTAD_* environment, the command line. Each flag is
// Set once, from the layer that wins, so a flag whose Value accumulates
// does not gather the losing layers too.
func parse(fs *flag.FlagSet, args []string) error {
	n := len(args)
	if n > 0 && args[n-1] == argFlagNames {
		return &flagSetError{fs: fs}
	}
	effective := n > 0 && args[n-1] == argEffective
	if effective {
		args = args[:n-1]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	sources := map[string]string{}
	fs.Visit(func(f *flag.Flag) { sources[f.Name] = "flag" })

	path, pathSource := fs.Lookup("config").Value.String(), "flag"
	if _, onCommandLine := sources["config"]; !onCommandLine {
		path, pathSource = os.Getenv(envName("config")), "env "+envName("config")
		if path != "" {
			sources["config"] = pathSource
			fs.Set("config", path)
		}
	}
	var file map[string]configValue
	if path != "" {
		var err error
		if file, err = loadConfig(path, fs); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if _, set := sources[f.Name]; set || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			sources[f.Name] = "env " + envName(f.Name)
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			sources[f.Name] = fmt.Sprintf("config %s:%d", path, v.line)
			if err := fs.Set(f.Name, v.value); err != nil {
				errs = append(errs, fmt.Errorf("config %s:%d: %s: %w", path, v.line, f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if effective {
		return &flagSetError{fs: fs, sources: sources}
	}
	return nil
}

// loadConfig reads path and refuses keys that are no flag of this command
// nor of any other (a file shared by serve and the admin commands holds
// keys each of them lacks).
func loadConfig(path string, fs *flag.FlagSet) (map[string]configValue, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	values, err := parseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	type unknownKey struct {
		key  string
		line int
	}
	var unknown []unknownKey
	for key, v := range values {
		if key == "config" {
			return nil, fmt.Errorf("config %s:%d: a config file cannot name another", path, v.line)
		}
		if fs.Lookup(key) == nil && !anyCommandHasFlag(key) {
			unknown = append(unknown, unknownKey{key, v.line})
		}
	}
	if len(unknown) > 0 {
		sort.Slice(unknown, func(i, j int) bool { return unknown[i].line < unknown[j].line })
		var names []string
		for _, u := range unknown {
			hint := ""
			if dashed := strings.ReplaceAll(u.key, "_", "-"); dashed != u.key && (fs.Lookup(dashed) != nil || anyCommandHasFlag(dashed)) {
				hint = "; keys are spelt like the flags: " + dashed
			}
			names = append(names, fmt.Sprintf("%q (line %d%s)", u.key, u.line, hint))
		}
		return nil, fmt.Errorf("config %s: unknown keys, no iotad command has these flags: %s", path, strings.Join(names, ", "))
	}
	return values, nil
}
