package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/iotad/iotad/api"
)

// proxyFlags is --trusted-proxies.
type proxyFlags struct{ trusted string }

func (p *proxyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.trusted, "trusted-proxies", "", "comma-separated CIDRs or addresses of reverse proxies whose Forwarded/X-Forwarded-For header names the client address for limits and caps (e.g. 127.0.0.1/32); empty trusts none")
}

// apply puts the parsed proxies into cfg. Trusting a proxy hands it the
// client addresses the login limit and the socket caps count, so the log
// says which ones are trusted.
func (p *proxyFlags) apply(cfg *api.Config, logger *slog.Logger) error {
	ps, err := api.ParseTrustedProxies(p.trusted)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	cfg.TrustedProxies = ps
	if len(ps) > 0 {
		logger.Info("trusting forwarded client addresses from proxies", slog.Any("proxies", ps))
	}
	return nil
}
