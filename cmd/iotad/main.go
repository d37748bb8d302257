// Command iotad is one binary that is a user's Iota and, beside it, a direct
// community. See README.md for a tour; `iotad help` lists the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: iotad [command] [flags]

commands:
  serve                          run the server (the default)
  user add|list|remove           manage the Iota's accounts
  token create|list|revoke       manage registration tokens
  community create|list|addr     manage communities
  invite create|list|revoke      manage a community's invites
  member list|role|ban|unban|kick
                                 list members, set a role (ownership moves only here),
                                 ban, unban or kick a member
  client communities list|add|remove
                                 use an Iota from the terminal with your key file
  backup --data DIR --out FILE   write a consistent backup of a data directory, also
                                 while serve runs (database, keys, secrets; mode 0600)
  restore --data DIR --in FILE   restore a backup into an empty or new directory
  config [--config FILE] [flags] print serve's effective settings and their sources
  help                           show this text

While iotad serve runs, the user, token, community, invite and member
commands are carried out by the server, through the admin socket
DATA/admin.sock (mode 0600: only the owner of the data directory may use
it), so that the change takes effect at once; otherwise they open the
database themselves.

Run "iotad COMMAND -h" for a command's flags. Every flag can also be given as
an environment variable (--data is IOTAD_DATA, --max-connections is
IOTAD_MAX_CONNECTIONS) and as a line of a config file (--config FILE or
IOTAD_CONFIG; "max-connections = 500"). Flags win over the environment,
which wins over the file, which wins over the defaults.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad:", err)
		os.Exit(1)
	}
}

// command is one entry of the subcommand table.
type command struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// hasFlags marks commands whose flags are config keys; prefix is what
	// comes before their verbs ("client communities list").
	hasFlags bool
	prefix   []string
}

// commands is filled in init: config reads the table to learn every
// command's flags, and the table names configCmd.
var commands []command

func init() {
	commands = []command{
		{name: "serve", run: serve, hasFlags: true},
		{name: "user", run: userCmd, hasFlags: true},
		{name: "token", run: tokenCmd, hasFlags: true},
		{name: "community", run: communityCmd, hasFlags: true},
		{name: "invite", run: inviteCmd, hasFlags: true},
		{name: "member", run: memberCmd, hasFlags: true},
		{name: "client", run: clientCmd, hasFlags: true, prefix: []string{"communities"}},
		{name: "backup", run: backupCmd, hasFlags: true},
		{name: "restore", run: restoreCmd, hasFlags: true},
		{name: "config", run: configCmd},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-') || args[0] == argFlagNames || args[0] == argEffective {
		return serve(ctx, args, stdout, stderr)
	}
	name, rest := args[0], args[1:]
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, rest, stdout, stderr)
		}
	}
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", name)
}

// verbsError answers argFlagNames in place of a verb: config asks each verb.
type verbsError struct{ verbs []string }

func (e *verbsError) Error() string { return fmt.Sprintf("iotad: verbs %v", e.verbs) }

// sub splits "noun verb" commands.
func sub(args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("missing command: one of %v", verbs)
	}
	if args[0] == argFlagNames {
		return "", nil, &verbsError{verbs: verbs}
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, fmt.Errorf("unknown command %q: one of %v", args[0], verbs)
}
