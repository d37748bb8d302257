package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
	"github.com/iotad/iotad/internal/atomicfile"
)

// voiceFlags are serve's media settings (docs/VOICE.md explains them).
type voiceFlags struct {
	mediaAddr, publicIPs, stun              string
	turnAddr, turnHost, turnSecret, turnURL string
	turnQuota                               int
	turnsAddr                               string
	// tls and tlsHost are serve's TLS, for turns: (nil: TLS is off).
	tls     *tls.Config
	tlsHost string
}

func (v *voiceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&v.mediaAddr, "media-addr", ":1984", "the one UDP address all call media uses")
	fs.StringVar(&v.publicIPs, "public-ip", "", "comma-separated public IPs to announce for media (NAT 1:1, e.g. a home router's WAN address)")
	fs.StringVar(&v.stun, "stun", "", "comma-separated STUN URLs handed to clients (e.g. stun:stun.example.org:3478)")
	fs.StringVar(&v.turnAddr, "turn-addr", "", "run the embedded TURN server on this address, UDP and TCP (e.g. :3478); empty: off")
	fs.StringVar(&v.turnHost, "turn-host", "", "host name or IP clients use for TURN (default: the address relays are announced on: the first --public-ip, else --turn-addr's, else this host's first IPv4 but loopback)")
	fs.StringVar(&v.turnSecret, "turn-secret", "", "secret for TURN credentials (default: made once and kept in DATA/turn.secret)")
	fs.IntVar(&v.turnQuota, "turn-quota", voice.DefaultTURNQuota, "allocations one user may hold at once on the embedded TURN server; more are refused with 486")
	fs.StringVar(&v.turnsAddr, "turns-addr", "", "with TLS and --turn-addr: address of TURN over TLS (turns:, TCP), same certificate (default: --turn-addr's port + 1; off: none)")
	fs.StringVar(&v.turnURL, "turn-url", "", "comma-separated URLs of an outside TURN server (coturn with use-auth-secret) that shares --turn-secret")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// start opens the SFU (and TURN when asked) and tells call tickets which
// ICE servers to hand out.
func (v *voiceFlags) start(a *app, log *slog.Logger) (*voice.SFU, *voice.TURN, error) {
	ips := splitList(v.publicIPs)
	sfu, err := voice.New(voice.Config{UDPAddr: v.mediaAddr, PublicIPs: ips, Log: log})
	if err != nil {
		return nil, nil, err
	}
	var turnSrv *voice.TURN
	if v.turnAddr != "" {
		secret := v.turnSecret
		if secret == "" {
			if secret, err = keptSecret(filepath.Join(a.dir, "turn.secret")); err != nil {
				sfu.Close()
				return nil, nil, err
			}
		}
		publicIP, err := relayIP(ips, v.turnAddr, interfaceIPs())
		if err != nil {
			sfu.Close()
			return nil, nil, err
		}
		if len(ips) == 0 {
			log.Warn("TURN relays announced on a local address; give --public-ip for callers outside this network", slog.String("ip", publicIP))
		}
		tcfg := voice.TURNConfig{
			Addr: v.turnAddr, PublicIP: publicIP, PublicHost: v.turnHost, Secret: secret,
			Members: a.communities, Media: sfu.MediaAddrs, OwnIPs: ips, Quota: v.turnQuota, Log: log,
		}
		if tcfg.TLSAddr, err = turnsAddr(v.turnsAddr, v.turnAddr, v.tls != nil); err != nil {
			sfu.Close()
			return nil, nil, err
		}
		if tcfg.TLSAddr != "" {
			tcfg.TLS, tcfg.TLSHost = v.tls, v.turnHost
			if tcfg.TLSHost == "" {
				tcfg.TLSHost = v.tlsHost
			}
		}
		turnSrv, err = voice.StartTURN(tcfg)
		if err != nil {
			sfu.Close()
			return nil, nil, err
		}
	}
	outside := splitList(v.turnURL)
	if len(outside) > 0 && v.turnSecret == "" {
		sfu.Close()
		if turnSrv != nil {
			turnSrv.Close()
		}
		return nil, nil, fmt.Errorf("--turn-url needs --turn-secret, the secret the TURN server was given")
	}
	stun := splitList(v.stun)
	a.communities.SetICEServers(func(userID string) []community.ICEServer {
		servers := []community.ICEServer{}
		if len(stun) > 0 {
			servers = append(servers, community.ICEServer{URLs: stun})
		}
		if turnSrv != nil {
			if urls, user, pass, err := turnSrv.Credentials(userID); err == nil {
				servers = append(servers, community.ICEServer{URLs: urls, Username: user, Credential: pass})
			}
		}
		if len(outside) > 0 {
			if user, pass, err := voice.TURNCredentials(v.turnSecret, userID); err == nil {
				servers = append(servers, community.ICEServer{URLs: outside, Username: user, Credential: pass})
			}
		}
		return servers
	})
	log.Info("media", slog.String("udp", sfu.Addr().String()), slog.Bool("turn", turnSrv != nil))
	return sfu, turnSrv, nil
}

// relayIP is the address TURN announces relays on: the first --public-ip,
// else the IP --turn-addr is bound to, else this host's first IPv4 address
// (a public one before a private one). A loopback address comes only from
// those flags, never as a default: remote callers told to relay through
// 127.0.0.1 would reach nothing, or a TURN server of their own host.
func relayIP(publicIPs []string, turnAddr string, own []netip.Addr) (string, error) {
	if len(publicIPs) > 0 {
		return publicIPs[0], nil
	}
	if host, _, err := net.SplitHostPort(turnAddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			return ip.String(), nil
		}
	}
	var private string
	for _, ip := range own {
		if !ip.Is4() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		if !ip.IsPrivate() {
			return ip.String(), nil
		}
		if private == "" {
			private = ip.String()
		}
	}
	if private != "" {
		return private, nil
	}
	return "", errors.New("--turn-addr: this host has no IPv4 address but loopback; give --public-ip (or bind --turn-addr to the address to announce)")
}

// interfaceIPs lists this host's addresses.
func interfaceIPs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// keptSecret reads a secret from path, making it (0600) the first time.
func keptSecret(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("TURN secret: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	// Durably, before any credential signed with it goes out: a secret
	// lost in a crash would void them, a torn one would void the server's.
	err = atomicfile.Create(path, []byte(secret+"\n"), 0o600)
	if errors.Is(err, atomicfile.ErrExists) {
		return keptSecret(path) // another iotad process made it first
	}
	if err != nil {
		return "", fmt.Errorf("TURN secret: %w", err)
	}
	return secret, nil
}
