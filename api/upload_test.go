package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

type ticketWire struct {
	UploadID  string `json:"upload_id"`
	URL       string `json:"url"`
	ExpiresAt int64  `json:"expires_at"`
}

type uploadedWire struct {
	FileID string `json:"file_id"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	URL    string `json:"url"`
}

func (m *member) ticket(t testing.TB, name string, size int) (ticketWire, error) {
	t.Helper()
	r, err := m.call(t, "text", "General", "chat", "upload", map[string]any{"name": name, "size": size, "type": "image/png"})
	if err != nil {
		return ticketWire{}, err
	}
	return decode[ticketWire](t, client.Message{Data: r.Payload}), nil
}

// put sends body to a ticket's url; chunked hides its length from the
// server, which then counts the bytes as they come.
func (e *testEnv) put(t testing.TB, url string, body []byte, chunked bool) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd)
	}
	req, err := http.NewRequest(http.MethodPut, e.http+url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// do sends req and reads the whole answer.
func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, out
}

func (e *testEnv) upload(t testing.TB, m *member, name string, body []byte) uploadedWire {
	t.Helper()
	tk, err := m.ticket(t, name, len(body))
	if err != nil {
		t.Fatal(err)
	}
	res, out := e.put(t, tk.URL, body, false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", res.StatusCode, out)
	}
	var up uploadedWire
	if err := json.Unmarshal(out, &up); err != nil {
		t.Fatal(err)
	}
	return up
}

func testPNG(t testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUploadAndAttach(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice, bob := env.join(community.RoleMember), env.join(community.RoleMember)
	img := testPNG(t, 40, 30)
	up := env.upload(t, alice, "cat picture.png", img)
	if up.Type != "image/png" || up.Width != 40 || up.Height != 30 || up.Size != int64(len(img)) || up.URL != "/files/"+up.FileID+"/cat%20picture.png" {
		t.Fatalf("upload reply %+v", up)
	}
	again := env.upload(t, alice, "again.png", img)
	if again.SHA256 != up.SHA256 || again.FileID == up.FileID {
		t.Fatalf("same bytes: %+v vs %+v", again, up)
	}

	ok(t)(alice.call(t, "text", "General", "chat", "send_message", map[string]any{"attachments": []string{up.FileID}}))
	live := nextResult(t, bob.c, community.ResultMessageLive)
	msg := decode[community.Message](t, client.Message{Data: live.Payload})
	if msg.Body != "" || len(msg.Attachments) != 1 || msg.Attachments[0].FileID != up.FileID || msg.Attachments[0].Width != 40 ||
		msg.Attachments[0].Name != "cat picture.png" || msg.Attachments[0].URL != up.URL {
		t.Fatalf("live: %s", live.Payload)
	}
	r := ok(t)(bob.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 10}))
	if !strings.Contains(string(r.Payload), `"attachments":[{"file_id":"`+up.FileID) {
		t.Fatalf("chunk: %s", r.Payload)
	}

	res, err := http.Get(env.http + up.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, img) || res.Header.Get("Content-Type") != "image/png" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "inline; ") {
		t.Fatalf("download: %d %v", res.StatusCode, res.Header)
	}

	// Bad inputs of send_message's attachments.
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = up.FileID
	}
	for _, tc := range []struct {
		who     *member
		payload map[string]any
		want    string
	}{
		{alice, map[string]any{"attachments": eleven}, "error_invalid_data"},
		{alice, map[string]any{"attachments": []string{up.FileID, up.FileID}}, "error_invalid_data"},
		{alice, map[string]any{"attachments": "x"}, "error_invalid_data"},
		{alice, map[string]any{"attachments": []any{1}}, "error_invalid_data"},
		{alice, map[string]any{"attachments": []string{}}, "error_invalid_data"}, // no text, no file
		{alice, map[string]any{"attachments": []string{"nope"}}, "error_not_found"},
		{alice, map[string]any{"attachments": []string{strings.Repeat("0", 32)}}, "error_not_found"},
		{bob, map[string]any{"attachments": []string{up.FileID}}, "error_permission"},
	} {
		_, err := tc.who.call(t, "text", "General", "chat", "send_message", tc.payload)
		if got := errType(err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.payload, got, tc.want)
		}
	}
}

func TestUploadRefusals(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	body := []byte("twelve bytes")

	for _, chunked := range []bool{false, true} {
		tk, _ := alice.ticket(t, "a.txt", len(body)-1)
		if res, out := env.put(t, tk.URL, body, chunked); res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("over size (chunked %v): %d %s", chunked, res.StatusCode, out)
		}
		tk, _ = alice.ticket(t, "a.txt", len(body)+1)
		if res, out := env.put(t, tk.URL, body, chunked); res.StatusCode != http.StatusBadRequest {
			t.Errorf("under size (chunked %v): %d %s", chunked, res.StatusCode, out)
		}
	}
	tk, _ := alice.ticket(t, "a.txt", len(body))
	if res, _ := env.put(t, tk.URL, body, false); res.StatusCode != 200 {
		t.Fatalf("first use: %d", res.StatusCode)
	}
	if res, _ := env.put(t, tk.URL, body, false); res.StatusCode != http.StatusNotFound {
		t.Errorf("reused (spent) ticket: %d", res.StatusCode)
	}
	tk, _ = alice.ticket(t, "a.txt", len(body))
	env.clock.Advance(community.UploadTicketTTL + time.Second)
	if res, _ := env.put(t, tk.URL, body, false); res.StatusCode != http.StatusNotFound {
		t.Errorf("expired ticket: %d", res.StatusCode)
	}
	if res, _ := env.put(t, "/api/upload/"+strings.Repeat("0", 32), body, false); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown ticket: %d", res.StatusCode)
	}

	// Bad inputs of upload.
	for _, tc := range []struct {
		payload map[string]any
		want    string
	}{
		{map[string]any{"size": 1}, "error_invalid_data"},
		{map[string]any{"name": "", "size": 1}, "error_invalid_data"},
		{map[string]any{"name": "a/b", "size": 1}, "error_invalid_data"},
		{map[string]any{"name": `a\b`, "size": 1}, "error_invalid_data"},
		{map[string]any{"name": "a\nb", "size": 1}, "error_invalid_data"},
		{map[string]any{"name": strings.Repeat("x", 256), "size": 1}, "error_invalid_data"},
		{map[string]any{"name": "a"}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": 0}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": -1}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": community.DefaultMaxUpload + 1}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": 1.5}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": 1, "type": 3}, "error_invalid_data"},
		{map[string]any{"name": "a", "size": 1, "type": "a\u00e9"}, "error_invalid_data"},
		{map[string]any{"name": 7, "size": 1}, "error_invalid_data"},
	} {
		_, err := alice.call(t, "text", "General", "chat", "upload", tc.payload)
		if got := errType(err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.payload, got, tc.want)
		}
	}
}

// An upload is never served as something a browser would run: HTML and
// SVG come back as downloads, with a sandboxing CSP and nosniff.
func TestDownloadHeaders(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	for _, tc := range []struct {
		name, body, sniffed, served, disposition string
	}{
		{"a.png", string(testPNG(t, 2, 2)), "image/png", "image/png", "inline"},
		{"x.svg", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`, "text/plain; charset=utf-8", "application/octet-stream", "attachment"},
		{"x.html", `<html><script>alert(1)</script></html>`, "text/html; charset=utf-8", "application/octet-stream", "attachment"},
		{"x.png", `<html><script>alert(1)</script></html>`, "text/html; charset=utf-8", "application/octet-stream", "attachment"},
		{"blob.bin", "\x00\x01\x02\x03\xff", "application/octet-stream", "application/octet-stream", "attachment"},
	} {
		up := env.upload(t, alice, tc.name, []byte(tc.body))
		if up.Type != tc.sniffed {
			t.Errorf("%s sniffed as %q", tc.name, up.Type)
		}
		res, err := http.Get(env.http + up.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if h.Get("Content-Type") != tc.served || !strings.HasPrefix(h.Get("Content-Disposition"), tc.disposition+"; filename=") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" ||
			h.Get("Cross-Origin-Resource-Policy") != "cross-origin" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %v", tc.name, h)
		}
	}
	for _, path := range []string{"/files/" + strings.Repeat("0", 32) + "/x", "/files/nope/x"} {
		if res, err := http.Get(env.http + path); err != nil || res.StatusCode != 404 {
			t.Errorf("%s: %v %v", path, res.StatusCode, err)
		}
	}
}

func TestProfileChanged(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice, bob := env.join(community.RoleMember), env.join(community.RoleMember)
	up := env.upload(t, alice, "me.png", testPNG(t, 8, 8))
	ok(t)(alice.root(t, "set_profile", map[string]any{"display_name": " Alice ", "avatar_file_id": up.FileID}))
	r := nextResult(t, bob.c, community.ResultProfileChanged)
	p := decode[community.Profile](t, client.Message{Data: r.Payload})
	if p.UserID != alice.ID || p.DisplayName != "Alice" || p.Avatar != "/files/"+up.FileID+"/me.png" {
		t.Fatalf("profile_changed: %s", r.Payload)
	}
	r = ok(t)(bob.root(t, "list_members", nil))
	if !strings.Contains(string(r.Payload), fmt.Sprintf(`"user_id":%q,"role":"member"`, alice.ID)) ||
		!strings.Contains(string(r.Payload), `"display_name":"Alice","avatar":"/files/`+up.FileID) {
		t.Fatalf("list_members: %s", r.Payload)
	}
	for _, tc := range []struct {
		payload map[string]any
		want    string
	}{
		{map[string]any{}, "error_invalid_data"},
		{map[string]any{"display_name": strings.Repeat("x", 33)}, "error_invalid_data"},
		{map[string]any{"display_name": "\u0000"}, "error_invalid_data"},
		{map[string]any{"avatar_file_id": 1}, "error_invalid_data"},
		{map[string]any{"avatar_file_id": "x"}, "error_not_found"},
		{map[string]any{"avatar_file_id": up.FileID}, "error_permission"}, // bob's, not his upload
	} {
		if _, err := bob.root(t, "set_profile", tc.payload); errType(err) != tc.want {
			t.Errorf("%v: %s, want %s", tc.payload, errType(err), tc.want)
		}
	}
}

// rawPut starts a PUT of size bytes to url on its own connection and
// waits for the server's first answer: "100 Continue" means the upload is
// admitted and its body is being read (Go's server sends it at the first
// read of the body), anything else is the final status.
func (e *testEnv) rawPut(t testing.TB, url string, size int) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		url, strings.TrimPrefix(e.http, "http://"), size)
	br := bufio.NewReader(conn)
	return conn, br, readStatus(t, br)
}

// readStatus reads a response's status line and skips its headers.
func readStatus(t testing.TB, br *bufio.Reader) int {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the PUT: %v", err)
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("status line %q", line)
	}
	for {
		h, err := br.ReadString('\n')
		if err != nil || h == "\r\n" {
			return status
		}
	}
}

// TestUploadsAtOnce: a member's fourth upload at once, and an address's
// ninth, get 429 and keep their ticket for the retry.
func TestUploadsAtOnce(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	members := []*member{env.join(community.RoleMember), env.join(community.RoleMember), env.join(community.RoleMember), env.join(community.RoleMember)}
	alice, bob := members[0], members[1]
	const size = 100
	stalled := func(m *member) (net.Conn, *bufio.Reader) {
		t.Helper()
		tk, err := m.ticket(t, "a.bin", size)
		if err != nil {
			t.Fatal(err)
		}
		conn, br, status := env.rawPut(t, tk.URL, size)
		if status != http.StatusContinue {
			t.Fatalf("upload of %s refused: %d", m.ID[:8], status)
		}
		return conn, br
	}
	var open []net.Conn
	var readers []*bufio.Reader
	for range 3 {
		c, br := stalled(alice)
		open, readers = append(open, c), append(readers, br)
	}
	tk, _ := alice.ticket(t, "fourth.bin", size)
	if _, _, status := env.rawPut(t, tk.URL, size); status != http.StatusTooManyRequests {
		t.Fatalf("a member's fourth upload at once: %d, want 429", status)
	}
	// Another member is not held up by alice's.
	for range 3 {
		stalled(bob)
	}
	stalled(members[2])
	stalled(members[2])
	// Eight from 127.0.0.1 now: the ninth, of a member with none, waits.
	tk9, _ := members[3].ticket(t, "ninth.bin", size)
	if _, _, status := env.rawPut(t, tk9.URL, size); status != http.StatusTooManyRequests {
		t.Fatalf("an address's ninth upload at once: %d, want 429", status)
	}
	// One of alice's ends: her refused ticket is still good. The reply
	// comes after the handler returned, so the gate has let go.
	open[0].Write(bytes.Repeat([]byte("x"), size))
	if status := readStatus(t, readers[0]); status != http.StatusOK {
		t.Fatalf("finishing an upload: %d", status)
	}
	res, out := env.put(t, tk.URL, bytes.Repeat([]byte("y"), size), false)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("retry of the refused ticket: %d %s", res.StatusCode, out)
	}
}

// TestUploadStalls: a PUT that stops sending is cut off at its deadline;
// it leaves no temp file and no file, and its ticket is spent.
func TestUploadStalls(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.UploadTimeout = 200 * time.Millisecond })
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	const size = 1000
	tk, err := alice.ticket(t, "slow.bin", size)
	if err != nil {
		t.Fatal(err)
	}
	conn, br, status := env.rawPut(t, tk.URL, size)
	if status != http.StatusContinue {
		t.Fatalf("upload refused: %d", status)
	}
	conn.Write(bytes.Repeat([]byte("x"), size/2))
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if status := readStatus(t, br); status != http.StatusRequestTimeout {
		t.Fatalf("stalled upload: %d, want 408", status)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("cut off after %v", waited)
	}
	if left, _ := os.ReadDir(filepath.Join(env.dir, "files", "tmp")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	if blobs, _ := filepath.Glob(filepath.Join(env.dir, "files", "??", "*")); len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
	if res, _ := env.put(t, tk.URL, bytes.Repeat([]byte("x"), size), false); res.StatusCode != http.StatusNotFound {
		t.Fatalf("the stalled upload's ticket again: %d, want 404", res.StatusCode)
	}
	if bytes.Contains(env.logs.Bytes(), []byte("store upload")) {
		t.Fatalf("a client's stall was logged as a server error:\n%s", env.logs.Bytes())
	}
}

// TestFilesOnOwnPort: the page from iotad's main port uploads to, and
// shows the images of, a community on a port of its own. Its CSP lets it
// reach that port, the upload answers the CORS preflight for iotad's own
// origins only, and the download may be embedded from the same site while
// keeping its sandbox.
func TestFilesOnOwnPort(t *testing.T) {
	env := newEnvSide(t)
	ctx := context.Background()
	page := env.http

	res, err := http.Get(page + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: blob: 127.0.0.1:*;") || !strings.Contains(csp, "connect-src 'self' ws: wss: 127.0.0.1:*;") {
		t.Fatalf("the page's CSP does not reach its host's other ports: %q", csp)
	}

	secret, _, err := env.side.CreateOperatorInvite(ctx, community.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := newKey(t)
	m, err := env.side.Join(ctx, secret, u.ID, u.Pub)
	if err != nil {
		t.Fatal(err)
	}
	img := testPNG(t, 4, 3)
	newTicket := func() string {
		raw, _ := json.Marshal(map[string]any{"name": "side.png", "size": len(img)})
		_, r, err := env.side.Call(ctx, m, "General", "general", "", "upload", raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Payload.(map[string]any)["url"].(string)
	}
	url := newTicket()
	request := func(method, origin string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, env.sideHTTP+url, bytes.NewReader(body))
		if body == nil {
			req.Body = http.NoBody
		}
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "PUT")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		return do(t, req)
	}
	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:1", "http://localhost" + strings.TrimPrefix(page, "http://127.0.0.1")} {
		if res, _ := request(http.MethodOptions, origin, nil); res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d %v", origin, res.StatusCode, res.Header)
		}
		if res, _ := request(http.MethodPut, origin, img); res.StatusCode != http.StatusForbidden {
			t.Errorf("PUT from %s: %d", origin, res.StatusCode)
		}
	}
	res, _ = request(http.MethodOptions, page, nil)
	if h := res.Header; res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != page ||
		h.Get("Access-Control-Allow-Methods") != "PUT" || !strings.EqualFold(h.Get("Access-Control-Allow-Headers"), "content-type") {
		t.Fatalf("preflight from the page: %d %v", res.StatusCode, h)
	}
	// The refused PUTs above left the ticket unspent.
	res, out := request(http.MethodPut, page, img)
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != page {
		t.Fatalf("PUT from the page: %d %v %s", res.StatusCode, res.Header, out)
	}
	var up uploadedWire
	json.Unmarshal(out, &up)
	res, err = http.Get(env.sideHTTP + up.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if h := res.Header; !bytes.Equal(got, img) || h.Get("Cross-Origin-Resource-Policy") != "cross-origin" ||
		h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("Content-Type") != "image/png" {
		t.Fatalf("download from the side port: %v", h)
	}
	// The main port does not serve the side community's files.
	if res, err := http.Get(page + up.URL); err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("the side's file on the main port: %v %v", res.StatusCode, err)
	}
}
