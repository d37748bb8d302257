package voice

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Limits of the embedded TURN server (PROTOCOL §9).
const (
	// MaxCredentialTTL bounds how long handed-out credentials open new
	// allocations: a leaked credential is worth ten minutes at most.
	MaxCredentialTTL = 10 * time.Minute
	// CredentialTTL is how long the credentials iotad hands out work,
	// for the embedded server and an outside one alike.
	CredentialTTL = MaxCredentialTTL
	// DefaultTURNQuota is how many allocations one user may hold at once:
	// a call takes one per TURN URL (UDP, TCP and, with TLS, turns:), and a
	// call left uncleanly keeps its own until they time out, so two calls'
	// worth and a spare.
	DefaultTURNQuota = 7
	// DefaultRecheck is how often the users holding allocations are
	// looked up again, so that a kick or ban ends their relays.
	DefaultRecheck = 30 * time.Second
	// permissionLifetime is RFC 8656's: a permission a removed member can
	// no longer renew ends this long after its last renewal at most.
	permissionLifetime = 5 * time.Minute
)

// Members tells TURN who may relay. Credentials are signed, not stored, so
// without asking they would outlive a kick or a ban by their TTL.
type Members interface {
	// HasMember reports whether userID is still a member in good standing
	// (not banned) of a community of this server.
	HasMember(ctx context.Context, userID string) (bool, error)
}

// TURNConfig sets up the embedded TURN server.
type TURNConfig struct {
	// Addr is host:port for both UDP and TCP.
	Addr string
	// PublicIP is the address relays are announced on.
	PublicIP string
	// PublicHost is how clients reach Addr (host name or IP; default PublicIP).
	PublicHost string
	Realm      string
	// TLS, when set, also serves TURN over TLS over TCP (turns:) on
	// TLSAddr, for networks that pass nothing but TLS; TLSHost is the name
	// its URL gives, one the certificate names (default PublicHost).
	TLS     *tls.Config
	TLSAddr string
	TLSHost string
	// Secret signs the short-lived credentials (TURN REST scheme, as
	// coturn's use-auth-secret), so none are stored.
	Secret string
	// TTL is how long handed-out credentials work (at most
	// MaxCredentialTTL; 0 means CredentialTTL).
	TTL time.Duration
	// Members is asked on every authenticated TURN request; required.
	Members Members
	// Media lists the SFU's media addresses (SFU.MediaAddrs), the only
	// private or host-local addresses relays may reach.
	Media func() []netip.AddrPort
	// OwnIPs are more addresses of this host that no interface shows
	// (the public IPs a NAT 1:1 router forwards here); relays avoid them.
	OwnIPs []string
	// Quota bounds one user's concurrent allocations (0: DefaultTURNQuota).
	Quota int
	// Recheck is how often holders of allocations are looked up again
	// (0: DefaultRecheck).
	Recheck time.Duration
	// Now is the clock of credentials (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// TURN is the embedded TURN server.
type TURN struct {
	cfg       TURNConfig
	srv       *turn.Server
	udp       net.PacketConn
	tcp       net.Listener
	tls       net.Listener
	gen       *relayGenerator
	log       *slog.Logger
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once

	// Dropped counts datagrams a relay refused to send or pass on.
	Dropped atomic.Int64
	// Refused counts authenticated requests refused: forged, expired or
	// too long-lived credentials, or a user no longer a member.
	Refused atomic.Int64
	// Revoked counts allocations closed because their user left.
	Revoked atomic.Int64
}

// StartTURN listens on cfg.Addr (UDP and TCP).
func StartTURN(cfg TURNConfig) (*TURN, error) {
	if cfg.Secret == "" {
		return nil, fmt.Errorf("voice: TURN needs a secret")
	}
	if cfg.Members == nil {
		return nil, fmt.Errorf("voice: TURN needs a member check")
	}
	if cfg.Realm == "" {
		cfg.Realm = "iotad"
	}
	if cfg.TTL == 0 {
		cfg.TTL = CredentialTTL
	}
	if cfg.TTL < 0 || cfg.TTL > MaxCredentialTTL {
		return nil, fmt.Errorf("voice: TURN credential TTL %v is not within (0, %v]", cfg.TTL, MaxCredentialTTL)
	}
	if cfg.Quota == 0 {
		cfg.Quota = DefaultTURNQuota
	}
	if cfg.Quota < 0 {
		return nil, fmt.Errorf("voice: TURN quota %d is negative", cfg.Quota)
	}
	if cfg.Recheck == 0 {
		cfg.Recheck = DefaultRecheck
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
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
	policy := &relayPolicy{media: cfg.Media}
	for _, s := range append([]string{cfg.PublicIP}, cfg.OwnIPs...) {
		if a, err := netip.ParseAddr(s); err == nil {
			policy.ours = append(policy.ours, a)
		}
	}
	t := &TURN{cfg: cfg, log: cfg.Log, stop: make(chan struct{})}
	t.gen = &relayGenerator{
		static: &turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: host},
		policy: policy, quota: cfg.Quota, dropped: &t.Dropped, byUser: map[string]map[*relayConn]bool{},
	}
	udp, tcp, err := listenBoth(cfg.Addr, host)
	if err != nil {
		return nil, err
	}
	permit := func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		return ok && policy.allowsIP(a)
	}
	listeners := []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: t.gen, PermissionHandler: permit}}
	var tl net.Listener
	if cfg.TLS != nil {
		conf := cfg.TLS.Clone()
		// TURN over TLS negotiates no application protocol.
		conf.NextProtos = nil
		if tl, err = tls.Listen("tcp4", cfg.TLSAddr, conf); err != nil {
			udp.Close()
			tcp.Close()
			return nil, fmt.Errorf("voice: TURN over TLS: %w", err)
		}
		listeners = append(listeners, turn.ListenerConfig{Listener: tl, RelayAddressGenerator: t.gen, PermissionHandler: permit})
		if t.cfg.TLSHost == "" {
			t.cfg.TLSHost = cfg.PublicHost
		}
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       t.authenticate,
		QuotaHandler:      func(user, _ string, _ net.Addr) bool { return t.gen.count(user) < cfg.Quota },
		PermissionTimeout: permissionLifetime,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: t.gen, PermissionHandler: permit}},
		ListenerConfigs:   listeners,
	})
	if err != nil {
		udp.Close()
		tcp.Close()
		if tl != nil {
			tl.Close()
		}
		return nil, fmt.Errorf("voice: TURN: %w", err)
	}
	t.srv, t.udp, t.tcp, t.tls = srv, udp, tcp, tl
	t.done.Add(1)
	go t.recheckLoop()
	return t, nil
}

// Port is the port TURN listens on.
func (t *TURN) Port() int { return t.udp.LocalAddr().(*net.UDPAddr).Port }

// TLSPort is the port of TURN over TLS (0: not served).
func (t *TURN) TLSPort() int {
	if t.tls == nil {
		return 0
	}
	return t.tls.Addr().(*net.TCPAddr).Port
}

// TURNCredentials makes TURN REST credentials under secret, for a TURN
// server that shares it (coturn's static-auth-secret). They work for
// CredentialTTL; such a server cannot see a kick or a ban.
func TURNCredentials(secret, user string) (username, password string, err error) {
	username, password = restCredentials(secret, user, time.Now().Add(CredentialTTL))
	return username, password, nil
}

// restCredentials is the TURN REST scheme: user name "<expiry>:<user>",
// password base64(HMAC-SHA1(secret, user name)).
func restCredentials(secret, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Credentials makes short-lived credentials for user and the URLs to use
// them with.
func (t *TURN) Credentials(user string) (urls []string, username, password string, err error) {
	if user == "" || strings.Contains(user, ":") {
		return nil, "", "", fmt.Errorf("voice: TURN user %q is empty or has a colon", user)
	}
	username, password = restCredentials(t.cfg.Secret, user, t.cfg.Now().Add(t.cfg.TTL))
	hp := net.JoinHostPort(t.cfg.PublicHost, fmt.Sprint(t.Port()))
	urls = []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
	if t.tls != nil {
		urls = append(urls, "turns:"+net.JoinHostPort(t.cfg.TLSHost, fmt.Sprint(t.TLSPort()))+"?transport=tcp")
	}
	return urls, username, password, nil
}

// Errors of authenticate, for the log.
var (
	errBadTURNUser   = errors.New("not <expiry>:<user id>")
	errTURNExpired   = errors.New("expired")
	errTURNLongLived = errors.New("valid for longer than the server allows")
	errNotMember     = errors.New("not a member")
	errNoAllocation  = errors.New("holds no allocation")
)

// authenticate is pion's AuthHandler: it returns the key the request's
// MESSAGE-INTEGRITY must match, or refuses.
//
// Expiry is held on Allocate only: an allocation opened with valid
// credentials lives on (a call may last hours) while its user stays a
// member, which every Refresh, CreatePermission and ChannelBind asks
// again. Without an allocation of its user on its 5-tuple, pion does
// nothing for those requests, so old credentials open nothing.
func (t *TURN) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	user, err := t.check(ra)
	if err != nil {
		t.Refused.Add(1)
		// Debug: pion asks before it checks MESSAGE-INTEGRITY, so anyone
		// can make this line. The user name is "<expiry>:<user id>", no
		// secret; the password never reaches this handler.
		t.log.Debug("TURN request refused", slog.String("user", user), slog.String("method", ra.Method.String()),
			slog.String("from", addrString(ra.SrcAddr)), slog.String("reason", err.Error()))
		return "", nil, false
	}
	return user, turn.GenerateAuthKey(ra.Username, ra.Realm, restPassword(t.cfg.Secret, ra.Username)), true
}

func (t *TURN) check(ra *turn.RequestAttributes) (user string, err error) {
	expiry, user, ok := strings.Cut(ra.Username, ":")
	if !ok || user == "" || strings.Contains(user, ":") {
		return "", errBadTURNUser
	}
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return user, errBadTURNUser
	}
	now := t.cfg.Now()
	if exp > now.Add(MaxCredentialTTL).Unix() {
		return user, errTURNLongLived
	}
	if ra.Method == stun.MethodAllocate && exp < now.Unix() {
		return user, errTURNExpired
	}
	// Other requests act on the user's allocation; without one they are
	// refused before the database is asked.
	if ra.Method != stun.MethodAllocate && t.gen.count(user) == 0 {
		return user, errNoAllocation
	}
	// Fail closed: a database hiccup costs a request, not a way in.
	if ok, err := t.isMember(user); err != nil || !ok {
		return user, errNotMember
	}
	return user, nil
}

func (t *TURN) isMember(user string) (bool, error) {
	select {
	case <-t.stop:
		// Shutting down: pion may still be handling a request, and the
		// database may be closed under it.
		return false, nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, err := t.cfg.Members.HasMember(ctx, user)
	if err != nil {
		t.log.Warn("TURN member check failed", slog.String("user", user), slog.Any("err", err))
		return false, fmt.Errorf("voice: TURN member check: %w", err)
	}
	return ok, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Allocations is how many relays user holds.
func (t *TURN) Allocations(user string) int { return t.gen.count(user) }

// Recheck looks up every user holding an allocation and closes the
// allocations of those no longer members. The server runs it every
// TURNConfig.Recheck; a test or an admin action may run it at once.
func (t *TURN) Recheck() {
	for _, user := range t.gen.users() {
		// Only a clear "no" closes relays: a database hiccup must not
		// cut every relayed call; the next request's check still fails
		// closed.
		if ok, err := t.isMember(user); ok || err != nil {
			continue
		}
		if n := t.gen.closeUser(user); n > 0 {
			t.Revoked.Add(int64(n))
			t.log.Info("TURN allocations closed", slog.String("user", user), slog.Int("allocations", n),
				slog.String("reason", errNotMember.Error()))
		}
	}
}

func (t *TURN) recheckLoop() {
	defer t.done.Done()
	tick := time.NewTicker(t.cfg.Recheck)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.Recheck()
		}
	}
}

// Close stops the server; calls after the first do nothing.
func (t *TURN) Close() error {
	err := net.ErrClosed
	t.closeOnce.Do(func() {
		close(t.stop)
		t.done.Wait()
		err = t.srv.Close()
	})
	return err
}

// listenBoth opens UDP and TCP on one port. With port 0 the TCP half takes
// the port UDP got, which some other socket may hold over TCP: then both
// are tried again on a fresh port, a few times.
func listenBoth(addr, host string) (net.PacketConn, net.Listener, error) {
	_, p, _ := net.SplitHostPort(addr)
	tries := 1
	if p == "0" {
		tries = 10
	}
	var err error
	for range tries {
		udp, uerr := net.ListenPacket("udp4", addr)
		if uerr != nil {
			return nil, nil, fmt.Errorf("voice: TURN UDP: %w", uerr)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, terr := net.Listen("tcp4", net.JoinHostPort(host, fmt.Sprint(port)))
		if terr == nil {
			return udp, tcp, nil
		}
		udp.Close()
		err = terr
	}
	return nil, nil, fmt.Errorf("voice: TURN TCP: %w", err)
}
