package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	icrypto "github.com/iotad/iotad/crypto"
)

// TestBackupUnderWriteLoadKeepsAcknowledgedWrites: members send messages
// to a running serve without pause; a backup is taken in the middle;
// restored into a fresh directory and served, it has every message whose
// acknowledgement arrived before the backup began, and the members' rows
// and the community's key with them (they log in again).
func TestBackupUnderWriteLoadKeepsAcknowledgedWrites(t *testing.T) {
	data := t.TempDir()
	// The members send as fast as they are answered, which the default
	// request limits refuse once commits are quick enough: the test is of
	// the backup, so the limits are lifted.
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", data, "--addr", addr, "--log-level", "warn",
		"--request-rate", "1e6", "--request-burst", "1000000", "--user-request-rate", "1e6", "--user-request-burst", "1000000")
	invite := firstInvites(t, data)[1]

	const writers = 3
	var (
		mu    sync.Mutex
		acked []string
	)
	enough := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	keys := make([]icrypto.PrivateKey, writers)
	for w := range writers {
		c, priv := joinAs(t, addr, fmt.Sprintf("writer%d", w), invite)
		keys[w] = priv
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := ctxTimeout(10 * time.Second)
				_, err := c.Function(ctx, "text", "General", "general", "send_message", map[string]string{"message": body})
				cancel()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acked = append(acked, body)
				if len(acked) == 30 {
					close(enough)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("the writers did not get 30 messages acknowledged")
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "iotad.tar.gz")
	start := time.Now()
	mustRun(t, "backup", "--data", data, "--out", out)
	took := time.Since(start)
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	close(stop)
	wg.Wait()
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, mode %v", err, info.Mode())
	}
	t.Logf("backup of %d acknowledged messages took %v, %d more acknowledged meanwhile; archive %d bytes", len(before), took, during, info.Size())

	restored := filepath.Join(t.TempDir(), "restored")
	mustRun(t, "restore", "--data", restored, "--in", out)
	checkModes(t, restored)
	for _, name := range []string{"iotad.db", "iota.key", "owner.tu", "first-invites.txt"} {
		if _, err := os.Stat(filepath.Join(restored, name)); err != nil {
			t.Errorf("restored: %v", err)
		}
	}
	for _, name := range []string{api.ControlSocket, "iotad.db-wal", "iotad.db-shm"} {
		if _, err := os.Stat(filepath.Join(restored, name)); err == nil {
			t.Errorf("restored %s, which a backup leaves out", name)
		}
	}
	if keys, _ := filepath.Glob(filepath.Join(restored, "community-*.key")); len(keys) != 1 {
		t.Errorf("restored community keys: %v", keys)
	}
	addr2 := startServe(t, restored)
	c := loginAs(t, addr2, "writer0", keys[0], "")
	have := map[string]bool{}
	for offset := 0; ; offset += 100 {
		ctx, cancel := ctxTimeout(10 * time.Second)
		r, err := c.Function(ctx, "text", "General", "general", "get_messages", map[string]int{"amount": 100, "loaded_messages": offset})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Payload struct {
				Messages []struct {
					Body string `json:"message"`
				} `json:"messages"`
				More bool `json:"has_more"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(r.Data, &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Payload.Messages {
			have[m.Body] = true
		}
		if !page.Payload.More {
			break
		}
	}
	for _, b := range before {
		if !have[b] {
			t.Fatalf("message %q, acknowledged before the backup began, is not in the restored directory (%d of its messages are)", b, len(have))
		}
	}
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// checkModes: a restored directory is 0700 and its files 0600.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
}

// TestRestoreRefusesBadArchives: a cut-off backup, a tar.gz of something
// else, a backup whose file was altered, and plain junk are each refused
// with an error that says so, and the target directory is not created.
func TestRestoreRefusesBadArchives(t *testing.T) {
	data := t.TempDir()
	mustRun(t, "user", "add", "--data", data, "--name", "a")
	good := filepath.Join(t.TempDir(), "good.tar.gz")
	mustRun(t, "backup", "--data", data, "--out", good)
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated":    raw[:len(raw)*2/3],
		"no trailer":   raw[:len(raw)-4],
		"foreign":      tarGz(t, map[string]string{"etc/passwd": "root:x:0:0"}),
		"altered file": alteredBackup(t, raw),
		"junk":         []byte("this is not an archive"),
		"empty":        nil,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(in, body, 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "target")
			_, _, err := runCmd(t, "restore", "--data", target, "--in", in)
			if err == nil || !strings.Contains(err.Error(), "not a whole iotad backup") {
				t.Fatalf("restore: %v", err)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the target exists after a refused restore: %v", err)
			}
		})
	}
}

func TestRestoreRefusesANonEmptyDirectory(t *testing.T) {
	data := t.TempDir()
	mustRun(t, "user", "add", "--data", data, "--name", "a")
	// The ACME cache is a directory of its own.
	os.Mkdir(filepath.Join(data, "acme"), 0o700)
	os.WriteFile(filepath.Join(data, "acme", "example.org"), []byte("cert and key"), 0o600)
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	mustRun(t, "backup", "--data", data, "--out", out)
	_, _, err := runCmd(t, "restore", "--data", data, "--in", out)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over a live directory: %v", err)
	}
	empty := t.TempDir()
	os.Chmod(empty, 0o755)
	mustRun(t, "restore", "--data", empty, "--in", out)
	checkModes(t, empty)
	if got, err := os.ReadFile(filepath.Join(empty, "acme", "example.org")); string(got) != "cert and key" {
		t.Fatalf("the ACME cache was not restored: %q %v", got, err)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// alteredBackup flips a byte of the last file of a backup and packs it
// again, with the manifest unchanged.
func alteredBackup(t *testing.T, raw []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	var last []byte
	var hdrs []*tar.Header
	var bodies [][]byte
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var body bytes.Buffer
		body.ReadFrom(tr)
		hdrs, bodies = append(hdrs, h), append(bodies, body.Bytes())
	}
	last = bodies[len(bodies)-1]
	last[0] ^= 1
	for i, h := range hdrs {
		tw.WriteHeader(h)
		tw.Write(bodies[i])
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

// FuzzReadBackup: no archive makes the reader panic or accept a file
// whose manifest it has not checked.
func FuzzReadBackup(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got []string
		m, err := readBackup(bytes.NewReader(raw), func(bf backupFile, content io.Reader) error {
			got = append(got, bf.Name)
			return nil
		})
		if err != nil {
			return
		}
		if len(got) != len(m.Files) || checkManifest(m) != nil {
			t.Fatalf("accepted %v for manifest %+v", got, m)
		}
	})
}
