package main

import (
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// TestInvitesOfATLSServerSayTLS: a server with TLS on prints invites with
// tls=1, and a client that follows the invite's address alone (wss://)
// joins; the operator's `invite create` says tls=1 too.
func TestInvitesOfATLSServerSayTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.files(t, 2001, "iotad.test")
	data := t.TempDir()
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", data, "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile)

	invites := firstInvites(t, data)
	a, err := client.ParseAddress(invites[1])
	if err != nil || !a.TLS || !strings.HasPrefix(a.SocketURL(), "wss://") {
		t.Fatalf("first invite %q → %+v, %v; want tls=1 and a wss:// socket", invites[1], a, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	com, err := client.Dial(ctx, a.SocketURL(), &client.Options{TLSConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "iotad.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer com.Close()
	_, priv, _ := icrypto.GenerateKey(randReader)
	if _, err := com.LoginCommunity(ctx, "friend", priv, a.Invite, nil); err != nil {
		t.Fatalf("join with the invite over %s: %v", a.SocketURL(), err)
	}

	out, _, err := runCmd(t, "invite", "create", "--data", data)
	if err != nil || !strings.Contains(out, "&tls=1") {
		t.Fatalf("invite create on a TLS server: %q, %v", out, err)
	}
}

func TestIotaURL(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:1984":                          "ws://localhost:1984/ws/iota",
		"https://example.org":                     "wss://example.org/ws/iota",
		"tensamin://example.org:443/?key=k&tls=1": "wss://example.org:443/ws/iota",
		"tensamin://example.org:1984/?invite=x":   "ws://example.org:1984/ws/iota",
	} {
		if got, err := iotaURL(in); err != nil || got != want {
			t.Errorf("iotaURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "tensamin://x/", "tensamin://x:1/?tls=2"} {
		if got, err := iotaURL(bad); err == nil {
			t.Errorf("iotaURL(%q) = %q, want an error", bad, got)
		}
	}
}
