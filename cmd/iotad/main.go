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
  help                           show this text

While iotad serve runs, the user, token, community, invite and member
commands are carried out by the server, through the admin socket
DATA/admin.sock (mode 0600: only the owner of the data directory may use
it), so that the change takes effect at once; otherwise they open the
database themselves.

Run "iotad COMMAND -h" for a command's flags. Every flag can also be given as
an environment variable: --data is IOTAD_DATA, --max-connections is
IOTAD_MAX_CONNECTIONS.
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-') {
		return serve(ctx, args, stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "user":
		return userCmd(ctx, rest, stdout, stderr)
	case "token":
		return tokenCmd(ctx, rest, stdout, stderr)
	case "community":
		return communityCmd(ctx, rest, stdout, stderr)
	case "invite":
		return inviteCmd(ctx, rest, stdout, stderr)
	case "member":
		return memberCmd(ctx, rest, stdout, stderr)
	case "client":
		return clientCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// sub splits "noun verb" commands.
func sub(args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("missing command: one of %v", verbs)
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, fmt.Errorf("unknown command %q: one of %v", args[0], verbs)
}
