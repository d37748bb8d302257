// Command iotad-load drives a running iotad from outside, like many
// clients at once, and reports what it measured. With --pid it also reads
// the server's own CPU time, so the cost per delivery is the server's alone.
//
//	iotad-load fanout --url ws://127.0.0.1:1984/ --invite TEXT --members 1000 --senders 4 --duration 10s --pid PID
//	iotad-load fanout --url ws://A/,ws://B/,ws://C/ ... --pid PIDA,PIDB,PIDC,PIDNATS   (members spread over a cluster)
//	iotad-load login --url ws://127.0.0.1:1984/ --invite TEXT --members 64 --workers 8 --duration 10s --pid PID
//	iotad-load voice --url ws://127.0.0.1:1984/ --invite TEXT --peers 25 --duration 10s --pid PID
//	iotad-load idle --url ws://127.0.0.1:1984/ --token TOKEN --sockets 2000   (server run with --pprof; --admin-url its admin listener)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/iotad/iotad/internal/load"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: iotad-load fanout|login [flags]   (iotad-load fanout -h for the flags)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "fanout":
		fanout()
	case "login":
		logins()
	case "voice":
		voiceRun()
	case "idle":
		idle()
	default:
		fmt.Fprintln(os.Stderr, "usage: iotad-load fanout|login|voice|idle [flags]")
		os.Exit(2)
	}
}

// serverCPU reads a process's CPU time, or exits.
func serverCPU(pid int) time.Duration {
	cpu, err := load.ProcessCPU(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad-load: server CPU:", err)
		os.Exit(1)
	}
	return cpu
}

func logins() {
	fs := flag.NewFlagSet("login", flag.ExitOnError)
	var cfg load.LoginConfig
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:1984/", "the community socket")
	fs.StringVar(&cfg.Invite, "invite", "", "an invite with at least --members uses")
	fs.IntVar(&cfg.Members, "members", 64, "members to log in again and again")
	fs.IntVar(&cfg.Workers, "workers", 8, "concurrent logins")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to log in")
	pid := fs.Int("pid", 0, "the server's process id, to report its CPU time per login")
	fs.Parse(os.Args[2:])
	var before time.Duration
	cfg.Ready = func() {
		if *pid != 0 {
			before = serverCPU(*pid)
		}
	}
	res, err := load.Logins(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad-load:", err)
		os.Exit(1)
	}
	fmt.Println(res)
	if *pid != 0 {
		cpu := serverCPU(*pid) - before
		fmt.Printf("server cpu=%v per login=%.0fµs logins per cpu-second=%.0f\n",
			cpu, float64(cpu.Microseconds())/float64(res.Logins), float64(res.Logins)/cpu.Seconds())
	}
}

func fanout() {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	var cfg load.FanoutConfig
	url := fs.String("url", "ws://127.0.0.1:1984/", "the community socket; comma-separated, the members spread over the nodes of a cluster")
	fs.StringVar(&cfg.Invite, "invite", "", "an invite with at least --members uses")
	fs.IntVar(&cfg.Members, "members", 1000, "member sockets in the channel")
	fs.IntVar(&cfg.Senders, "senders", 4, "how many of them post")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second over all senders (0: each sender waits for its acknowledgement)")
	fs.BoolVar(&cfg.Stagger, "stagger", false, "with --rate: spread the senders' posts evenly instead of all at each tick")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to post")
	fs.StringVar(&cfg.Path, "path", "General", "the channel's category path")
	fs.StringVar(&cfg.Channel, "channel", "general", "the text channel")
	fs.IntVar(&cfg.LoginParallel, "login-parallel", 32, "concurrent logins while connecting")
	fs.BoolVar(&cfg.LegacyLogin, "legacy-login", false, "log in with login version 1, to measure a server from before version 2")
	pidList := fs.String("pid", "", "the server's process id, to report its CPU time per delivery; comma-separated, the sum over the nodes (and nats-server)")
	fs.Parse(os.Args[2:])
	cfg.URLs = strings.Split(*url, ",")
	cfg.URL = cfg.URLs[0]
	var pids []int
	for _, p := range strings.Split(*pidList, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "iotad-load: --pid %q: not a process id\n", p)
			os.Exit(2)
		}
		pids = append(pids, n)
	}
	cpuOf := func() time.Duration {
		var sum time.Duration
		for _, p := range pids {
			sum += serverCPU(p)
		}
		return sum
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The members join first: what that took is reported on a line of
	// its own, before the fan-out's.
	joinStart, joinCPU := time.Now(), cpuOf()
	var before time.Duration
	var joined string
	cfg.Ready = func() {
		took := time.Since(joinStart)
		before = cpuOf()
		joined = fmt.Sprintf("%d members joined in %v", cfg.Members, took.Round(time.Millisecond))
		if len(pids) > 0 {
			cpu := before - joinCPU
			joined += fmt.Sprintf(", server cpu=%v per join=%.0fµs", cpu, float64(cpu.Microseconds())/float64(cfg.Members))
		}
	}
	res, err := load.Fanout(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad-load:", err)
		os.Exit(1)
	}
	fmt.Println(joined)
	fmt.Println(res)
	if len(pids) > 0 {
		cpu := cpuOf() - before
		fmt.Printf("server cpu=%v per delivery=%.2fµs deliveries per cpu-second=%.0f\n",
			cpu, float64(cpu.Microseconds())/float64(res.Delivered), float64(res.Delivered)/cpu.Seconds())
	}
}

func voiceRun() {
	fs := flag.NewFlagSet("voice", flag.ExitOnError)
	var cfg load.VoiceConfig
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:1984/", "the community socket (the call socket is URL + ws/calls/)")
	fs.StringVar(&cfg.Invite, "invite", "", "an invite with at least --peers uses")
	fs.IntVar(&cfg.Peers, "peers", 10, "peers in the voice channel, each publishing 50 packets a second")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to measure")
	fs.StringVar(&cfg.Path, "path", "General", "the voice channel's category path")
	fs.StringVar(&cfg.Channel, "channel", "voice", "the voice channel")
	pid := fs.Int("pid", 0, "the server's process id, to report its CPU time per forwarded packet")
	fs.Parse(os.Args[2:])
	var before time.Duration
	cfg.Ready = func() {
		if *pid != 0 {
			before = serverCPU(*pid)
		}
	}
	res, err := load.Voice(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad-load:", err)
		os.Exit(1)
	}
	fmt.Println(res)
	if *pid != 0 {
		// Ready ran before the measured window; stop the clock at its end.
		cpu := serverCPU(*pid) - before
		fmt.Printf("server cpu=%v per forwarded packet=%.2fµs cpu-seconds per million packets=%.1f\n",
			cpu, float64(cpu.Microseconds())/float64(res.Received), cpu.Seconds()/float64(res.Received)*1e6)
	}
}

func idle() {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var cfg load.IdleConfig
	url := fs.String("url", "ws://127.0.0.1:1984/", "the server's socket address")
	fs.StringVar(&cfg.Token, "token", "", "a registration token with --sockets uses: open Iota sockets")
	fs.StringVar(&cfg.Invite, "invite", "", "or an invite with --sockets uses: open community sockets")
	fs.IntVar(&cfg.Sockets, "sockets", 2000, "idle logged-in sockets to open")
	fs.StringVar(&cfg.PprofURL, "admin-url", "http://127.0.0.1:9184", "the server's admin listener (iotad serve --admin-addr --pprof)")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "how long the sockets sit idle before the server's memory is read (past the 30 s ping interval, idle writers have parked)")
	fs.Parse(os.Args[2:])
	cfg.IotaURL, cfg.CommunityURL = *url+"ws/iota", *url
	res, err := load.Idle(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iotad-load:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}
