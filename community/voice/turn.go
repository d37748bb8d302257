package voice

import (
	"fmt"
	"net"
	"time"

	"github.com/pion/turn/v5"
)

// TURNConfig sets up the embedded TURN server.
type TURNConfig struct {
	// Addr is host:port for both UDP and TCP.
	Addr string
	// PublicIP is the address relays are announced on.
	PublicIP string
	// PublicHost is how clients reach Addr (host name or IP; default PublicIP).
	PublicHost string
	Realm      string
	// Secret signs the short-lived credentials (TURN REST scheme, as
	// coturn's use-auth-secret), so none are stored.
	Secret string
	// TTL is how long handed-out credentials work.
	TTL time.Duration
}

// TURN is the embedded TURN server.
type TURN struct {
	cfg TURNConfig
	srv *turn.Server
	udp net.PacketConn
	tcp net.Listener
}

// StartTURN listens on cfg.Addr (UDP and TCP).
func StartTURN(cfg TURNConfig) (*TURN, error) {
	if cfg.Secret == "" {
		return nil, fmt.Errorf("voice: TURN needs a secret")
	}
	if cfg.Realm == "" {
		cfg.Realm = "iotad"
	}
	if cfg.TTL == 0 {
		cfg.TTL = CredentialTTL
	}
	ip := net.ParseIP(cfg.PublicIP)
	if ip == nil {
		return nil, fmt.Errorf("voice: TURN public IP %q is not an IP address", cfg.PublicIP)
	}
	if cfg.PublicHost == "" {
		cfg.PublicHost = cfg.PublicIP
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("voice: TURN address: %w", err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	udp, err := net.ListenPacket("udp4", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("voice: TURN UDP: %w", err)
	}
	// TCP on the port UDP got, so ":0" works in tests.
	port := udp.LocalAddr().(*net.UDPAddr).Port
	tcp, err := net.Listen("tcp4", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("voice: TURN TCP: %w", err)
	}
	relay := &turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: host}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       turn.LongTermTURNRESTAuthHandler(cfg.Secret, nil),
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: relay}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: relay}},
	})
	if err != nil {
		udp.Close()
		tcp.Close()
		return nil, fmt.Errorf("voice: TURN: %w", err)
	}
	return &TURN{cfg: cfg, srv: srv, udp: udp, tcp: tcp}, nil
}

// Port is the port TURN listens on.
func (t *TURN) Port() int { return t.udp.LocalAddr().(*net.UDPAddr).Port }

// CredentialTTL is how long credentials for an outside TURN server work.
const CredentialTTL = 12 * time.Hour

// TURNCredentials makes TURN REST credentials under secret, for a TURN
// server that shares it (the embedded one, or coturn's static-auth-secret).
func TURNCredentials(secret, user string) (username, password string, err error) {
	return turn.GenerateLongTermTURNRESTCredentials(secret, user, CredentialTTL)
}

// Credentials makes short-lived credentials for user and the URLs to use
// them with.
func (t *TURN) Credentials(user string) (urls []string, username, password string, err error) {
	username, password, err = turn.GenerateLongTermTURNRESTCredentials(t.cfg.Secret, user, t.cfg.TTL)
	if err != nil {
		return nil, "", "", err
	}
	hp := net.JoinHostPort(t.cfg.PublicHost, fmt.Sprint(t.Port()))
	return []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}, username, password, nil
}

// Close stops the server.
func (t *TURN) Close() error { return t.srv.Close() }
