package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
			h.Get("Cross-Origin-Resource-Policy") != "same-origin" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
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
