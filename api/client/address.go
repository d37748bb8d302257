package client

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadAddress means a tensamin:// text could not be read.
var ErrBadAddress = errors.New("client: not a community address")

// Address is a community address as invites and sealed entries write it:
// tensamin://host:port/?invite=…&key=…&tls=1. tls=1 means the community
// speaks TLS (wss://); no tls parameter means plain ws://.
type Address struct {
	Host   string // a name or an IP, without brackets
	Port   string
	TLS    bool
	Invite string
	// Key is the community's public key as the text gives it (base64url).
	Key string
}

// ParseAddress reads a tensamin:// text. Parameters it does not know are
// ignored, so a later version may add some; user info, a path or a
// fragment are refused, since a person reading the link could be misled
// about where it goes.
func ParseAddress(text string) (Address, error) {
	u, err := url.Parse(strings.TrimSpace(text))
	if err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	if !strings.EqualFold(u.Scheme, "tensamin") {
		return Address{}, fmt.Errorf("%w: it must start with tensamin://", ErrBadAddress)
	}
	if u.User != nil || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return Address{}, fmt.Errorf("%w: only tensamin://host:port/?… is allowed", ErrBadAddress)
	}
	// SplitHostPort, unlike url.Hostname, refuses an unbracketed IPv6
	// address such as tensamin://::1.
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return Address{}, fmt.Errorf("%w: it must name a host and a port", ErrBadAddress)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Address{}, fmt.Errorf("%w: port %q", ErrBadAddress, port)
	}
	if strings.Contains(host, ":") {
		if ip, err := netip.ParseAddr(host); err != nil || ip.Zone() != "" {
			return Address{}, fmt.Errorf("%w: host %q", ErrBadAddress, host)
		}
	}
	q := u.Query()
	a := Address{Host: host, Port: port, Invite: q.Get("invite"), Key: q.Get("key")}
	switch q.Get("tls") {
	case "1":
		a.TLS = true
	case "", "0":
	default:
		return Address{}, fmt.Errorf("%w: tls must be 1 or absent", ErrBadAddress)
	}
	return a, nil
}

// SocketURL is the community socket's URL: wss:// when the address says
// TLS, ws:// otherwise.
func (a Address) SocketURL() string {
	scheme := "ws"
	if a.TLS {
		scheme = "wss"
	}
	return scheme + "://" + net.JoinHostPort(a.Host, a.Port) + "/"
}

// String is the address in its written form, parameters in the order
// invite, key, tls, each only when set.
func (a Address) String() string {
	q := []string{}
	if a.Invite != "" {
		q = append(q, "invite="+url.QueryEscape(a.Invite))
	}
	if a.Key != "" {
		q = append(q, "key="+url.QueryEscape(a.Key))
	}
	if a.TLS {
		q = append(q, "tls=1")
	}
	s := "tensamin://" + net.JoinHostPort(a.Host, a.Port) + "/"
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}
