package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
)

// voiceFlags are serve's media settings (docs/VOICE.md explains them).
type voiceFlags struct {
	mediaAddr, publicIPs, stun              string
	turnAddr, turnHost, turnSecret, turnURL string
}

func (v *voiceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&v.mediaAddr, "media-addr", ":1984", "the one UDP address all call media uses")
	fs.StringVar(&v.publicIPs, "public-ip", "", "comma-separated public IPs to announce for media (NAT 1:1, e.g. a home router's WAN address)")
	fs.StringVar(&v.stun, "stun", "", "comma-separated STUN URLs handed to clients (e.g. stun:stun.example.org:3478)")
	fs.StringVar(&v.turnAddr, "turn-addr", "", "run the embedded TURN server on this address, UDP and TCP (e.g. :3478); empty: off")
	fs.StringVar(&v.turnHost, "turn-host", "", "host name or IP clients use for TURN (default: the first --public-ip)")
	fs.StringVar(&v.turnSecret, "turn-secret", "", "secret for TURN credentials (default: made once and kept in DATA/turn.secret)")
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
		publicIP := "127.0.0.1"
		if len(ips) > 0 {
			publicIP = ips[0]
		}
		turnSrv, err = voice.StartTURN(voice.TURNConfig{Addr: v.turnAddr, PublicIP: publicIP, PublicHost: v.turnHost, Secret: secret})
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
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("TURN secret: %w", err)
	}
	return secret, nil
}
