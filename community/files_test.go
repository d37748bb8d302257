package community

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// movableClock is a clock tests move forward.
type movableClock struct{ offset atomic.Int64 }

func (c *movableClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *movableClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func pngBytes(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ticket asks for an upload ticket as m.
func ticket(t testing.TB, c *Community, m Member, name string, size int) (string, error) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"name": name, "size": size, "type": "application/x-test"})
	_, res, err := c.Call(context.Background(), m, "General", "general", "", "upload", raw, nil)
	if err != nil {
		return "", err
	}
	return res.Payload.(map[string]any)["upload_id"].(string), nil
}

func uploadFile(t testing.TB, c *Community, m Member, name string, body []byte) (File, error) {
	t.Helper()
	id, err := ticket(t, c, m, name, len(body))
	if err != nil {
		return File{}, err
	}
	tk, err := c.ClaimUpload(context.Background(), id)
	if err != nil {
		return File{}, err
	}
	return c.StoreUpload(context.Background(), tk, bytes.NewReader(body))
}

func openFilesTest(t *testing.T, b dbtest.Backend) (*Service, *Community, *movableClock, string) {
	t.Helper()
	clock := &movableClock{}
	dir := t.TempDir()
	d := b.Open(t)
	s, err := Open(context.Background(), d, Options{KeyDir: dir, Now: clock.now, UploadQuota: 1000, MaxUpload: 600})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); d.Close() })
	c, err := s.Create(context.Background(), "Files")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDefaultChannels(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, c, clock, dir
}

func TestFileStore(t *testing.T) { dbtest.Each(t, testFileStore) }

func testFileStore(t *testing.T, b dbtest.Backend) {
	s, c, clock, dir := openFilesTest(t, b)
	ctx := context.Background()
	alice, bob := addMember(t, c, RoleMember), addMember(t, c, RoleMember)
	img := pngBytes(t, 7, 5)

	f, err := uploadFile(t, c, alice, "dot.png", img)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != "image/png" || f.Width != 7 || f.Height != 5 || f.Size != int64(len(img)) {
		t.Fatalf("stored %+v", f.Attachment)
	}
	// The same bytes again: a second row, one blob, no more quota used.
	f2, err := uploadFile(t, c, alice, "again.png", img)
	if err != nil || f2.SHA256 != f.SHA256 || f2.FileID == f.FileID {
		t.Fatalf("second upload %+v %v", f2, err)
	}
	if used, _ := c.usedBytes(ctx, s.db.Read, alice.UserID); used != int64(len(img)) {
		t.Fatalf("quota use %d, want %d", used, len(img))
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "files", "??", "*"))
	if len(blobs) != 1 {
		t.Fatalf("blobs on disk: %v", blobs)
	}

	// A ticket is spent once; an expired or unknown one is not found.
	id, _ := ticket(t, c, alice, "x", 3)
	if _, err := c.ClaimUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClaimUpload(ctx, id); !errors.Is(err, ErrConflict) {
		t.Fatalf("reused ticket: %v", err)
	}
	id, _ = ticket(t, c, alice, "x", 3)
	clock.advance(UploadTicketTTL + time.Second)
	if _, err := c.ClaimUpload(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired ticket: %v", err)
	}
	other, err := s.Create(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	id, _ = ticket(t, c, alice, "x", 3)
	if _, err := other.ClaimUpload(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another community's ticket: %v", err)
	}

	// Too many, too few bytes.
	for _, n := range []int{4, 2} {
		id, _ := ticket(t, c, alice, "x", 3)
		tk, _ := c.ClaimUpload(ctx, id)
		if _, err := c.StoreUpload(ctx, tk, bytes.NewReader(make([]byte, n))); !errors.Is(err, ErrInvalidData) {
			t.Fatalf("%d bytes for 3: %v", n, err)
		}
	}

	// The quota (1000 bytes here): a ticket past it is refused, and so is
	// an upload that other uploads filled the quota under.
	if _, err := ticket(t, c, bob, "big", 600); err != nil {
		t.Fatal(err)
	}
	id1, _ := ticket(t, c, bob, "a", 600)
	id2, _ := ticket(t, c, bob, "b", 600)
	t1, _ := c.ClaimUpload(ctx, id1)
	t2, _ := c.ClaimUpload(ctx, id2)
	if _, err := c.StoreUpload(ctx, t1, bytes.NewReader(bytes.Repeat([]byte{1}, 600))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreUpload(ctx, t2, bytes.NewReader(bytes.Repeat([]byte{2}, 600))); !errors.Is(err, ErrQuota) {
		t.Fatalf("upload past the quota: %v", err)
	}
	if _, err := ticket(t, c, bob, "c", 401); !errors.Is(err, ErrQuota) {
		t.Fatalf("ticket past the quota: %v", err)
	}
	if _, err := ticket(t, c, bob, "c", 601); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ticket past the size cap: %v", err)
	}

	// Attach: own files only, at most ten, then the sweep.
	send := func(m Member, payload string) (*Result, error) {
		_, res, err := c.Call(ctx, m, "General", "general", "", "send_message", json.RawMessage(payload), nil)
		return res, err
	}
	if _, err := send(bob, fmt.Sprintf(`{"attachments":[%q]}`, f.FileID)); !errors.Is(err, ErrPermission) {
		t.Fatalf("attaching another's file: %v", err)
	}
	res, err := send(alice, fmt.Sprintf(`{"message":"","attachments":[%q]}`, f.FileID))
	if err != nil {
		t.Fatal(err)
	}
	msgID := res.Payload.(map[string]any)["message_id"].(string)
	ch, _ := c.Find("General", "general")
	msgs, _, err := c.messagesAt(ctx, ch, 0, 10)
	if err == nil {
		err = c.loadAttachments(ctx, ch, msgs)
	}
	if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Width != 7 ||
		msgs[0].Attachments[0].URL != "/files/"+f.FileID+"/dot.png" {
		t.Fatalf("chunk: %+v %v", msgs, err)
	}

	clock.advance(FileGrace + time.Minute)
	if n, err := s.CollectFiles(ctx); err != nil || n != 2 {
		// f2 and bob's 600 bytes; f is attached.
		t.Fatalf("collected %d, %v", n, err)
	}
	if _, err := os.Stat(f.Path); err != nil {
		t.Fatalf("an attached file's blob is gone: %v", err)
	}
	raw, _ := json.Marshal(map[string]string{"message_id": msgID})
	if _, _, err := c.Call(ctx, alice, "General", "general", "", "delete_message", raw, nil); err != nil {
		t.Fatal(err)
	}
	// Released now: kept for the grace hour, then collected with its blob.
	if n, _ := s.CollectFiles(ctx); n != 0 {
		t.Fatalf("collected %d files right after the release", n)
	}
	clock.advance(FileGrace + time.Minute)
	if n, _ := s.CollectFiles(ctx); n != 1 {
		t.Fatalf("collected %d after the grace hour", n)
	}
	if _, err := os.Stat(f.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the blob of a collected file: %v", err)
	}
	if _, err := c.File(ctx, f.FileID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a collected file: %v", err)
	}
}

func TestProfiles(t *testing.T) { dbtest.Each(t, testProfiles) }

func testProfiles(t *testing.T, b dbtest.Backend) {
	s, c, clock, _ := openFilesTest(t, b)
	ctx := context.Background()
	alice, bob := addMember(t, c, RoleMember), addMember(t, c, RoleMember)
	avatar, err := uploadFile(t, c, alice, "me.png", pngBytes(t, 4, 4))
	if err != nil {
		t.Fatal(err)
	}
	text, err := uploadFile(t, c, alice, "a.txt", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.SetProfile(ctx, alice, json.RawMessage(fmt.Sprintf(`{"display_name":"  Alice  ","avatar_file_id":%q}`, avatar.FileID)))
	if err != nil || p.DisplayName != "Alice" || p.Avatar != "/files/"+avatar.FileID+"/me.png" {
		t.Fatalf("set: %+v %v", p, err)
	}
	for _, tc := range []struct {
		who     Member
		payload string
		want    error
	}{
		{alice, `{}`, ErrInvalidData},
		{alice, `{"display_name":""}`, ErrInvalidData},
		{alice, `{"display_name":"   "}`, ErrInvalidData},
		{alice, `{"display_name":"` + strings.Repeat("é", 33) + `"}`, ErrInvalidData},
		{alice, `{"display_name":"a\u0007b"}`, ErrInvalidData},
		{alice, `{"display_name":"a\u0000b"}`, ErrInvalidData},
		{alice, `{"display_name":5}`, ErrInvalidData},
		{alice, `{"avatar_file_id":"nope"}`, ErrNotFound},
		{alice, `{"avatar_file_id":"00000000000000000000000000000000"}`, ErrNotFound},
		{alice, fmt.Sprintf(`{"avatar_file_id":%q}`, text.FileID), ErrInvalidData},
		{bob, fmt.Sprintf(`{"avatar_file_id":%q}`, avatar.FileID), ErrPermission},
	} {
		if _, err := c.SetProfile(ctx, tc.who, json.RawMessage(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.payload, err, tc.want)
		}
	}
	// The avatar keeps its file from the sweep.
	clock.advance(FileGrace + time.Minute)
	if _, err := s.CollectFiles(ctx); err != nil {
		t.Fatal(err)
	}
	profiles, err := c.Profiles(ctx)
	if err != nil || profiles[alice.UserID].Avatar == "" || profiles[alice.UserID].DisplayName != "Alice" {
		t.Fatalf("profiles after the sweep: %+v %v", profiles, err)
	}
	if _, ok := profiles[bob.UserID]; ok {
		t.Fatalf("bob set nothing: %+v", profiles)
	}
	// null clears.
	p, err = c.SetProfile(ctx, alice, json.RawMessage(`{"display_name":null,"avatar_file_id":null}`))
	if err != nil || p.DisplayName != "" || p.Avatar != "" {
		t.Fatalf("cleared: %+v %v", p, err)
	}
}

// TestStartupTidiesTmp: start-up removes an upload's temp file a crash
// left, but not one young enough to be another node's upload in progress
// (the directory is shared in a cluster), and puts back a blob a sweep cut
// short had moved aside.
func TestStartupTidiesTmp(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	tmp := filepath.Join(files, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	left, young := filepath.Join(tmp, "up-123"), filepath.Join(tmp, "up-456")
	os.WriteFile(left, []byte("half an upload"), 0o600)
	os.WriteFile(young, []byte("another node's upload"), 0o600)
	old := time.Now().Add(-tmpGrace - time.Minute)
	os.Chtimes(left, old, old)
	sum := strings.Repeat("ab", 32)
	os.WriteFile(filepath.Join(tmp, trashPrefix+sum+"-"+randomID()), []byte("moved aside"), 0o600)
	fs, err := openFileStore(files, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temp file of a cut upload survived start-up: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("start-up removed an upload in progress: %v", err)
	}
	if b, err := os.ReadFile(fs.blobPath(sum)); string(b) != "moved aside" {
		t.Fatalf("the blob moved aside is not back: %q %v", b, err)
	}
}

// TestSweepAcrossNodes: two nodes share the database and the files
// directory. While one sweeps the blob of a file nobody uses, the other
// stores an upload of the same bytes, at each step of the sweep where that
// could go wrong; the new file keeps its blob.
func TestSweepAcrossNodes(t *testing.T) { dbtest.Each(t, testSweepAcrossNodes) }

func testSweepAcrossNodes(t *testing.T, b dbtest.Backend) {
	ctx := context.Background()
	for _, step := range []string{"unnamed", "moved"} {
		t.Run(step, func(t *testing.T) {
			target, dir := b.New(t), t.TempDir()
			clock := &movableClock{}
			opts := Options{KeyDir: dir, Now: clock.now}
			node := func() *Service {
				s, err := Open(ctx, dbtest.OpenTarget(t, target), opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			s1 := node()
			c1, err := s1.Create(ctx, "Files")
			if err != nil {
				t.Fatal(err)
			}
			if err := c1.CreateDefaultChannels(ctx); err != nil {
				t.Fatal(err)
			}
			s2 := node()
			c2, err := s2.Get(c1.ID)
			if err != nil {
				t.Fatal(err)
			}
			alice := addMember(t, c1, RoleMember)
			body := pngBytes(t, 3, 3)
			unused, err := uploadFile(t, c1, alice, "old.png", body)
			if err != nil {
				t.Fatal(err)
			}
			clock.advance(FileGrace + time.Minute)
			var fresh File
			var upErr error
			s1.files.hook = func(at, sum string) {
				if at == step && sum == unused.SHA256 {
					fresh, upErr = uploadFile(t, c2, alice, "new.png", body)
				}
			}
			n, err := s1.CollectFiles(ctx)
			s1.files.hook = nil
			if err != nil || n != 1 {
				t.Fatalf("collected %d, %v", n, err)
			}
			if upErr != nil || fresh.FileID == "" {
				t.Fatalf("the upload on the other node: %+v %v", fresh, upErr)
			}
			if got, err := os.ReadFile(fresh.Path); !bytes.Equal(got, body) {
				t.Fatalf("the new file's blob after the sweep: %d bytes, %v", len(got), err)
			}
			raw, _ := json.Marshal(map[string]any{"attachments": []string{fresh.FileID}})
			if _, _, err := c2.Call(ctx, alice, "General", "general", "", "send_message", raw, nil); err != nil {
				t.Fatalf("sending the new file: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "files", "tmp", "*")); len(left) != 0 {
				t.Fatalf("left in tmp: %v", left)
			}
		})
	}
}

// TestAttachCollected: a file the sweep deleted is not found when a
// message attaches it or a profile takes it as avatar, on both backends.
func TestAttachCollected(t *testing.T) { dbtest.Each(t, testAttachCollected) }

func testAttachCollected(t *testing.T, b dbtest.Backend) {
	s, c, clock, _ := openFilesTest(t, b)
	ctx := context.Background()
	alice := addMember(t, c, RoleMember)
	f, err := uploadFile(t, c, alice, "dot.png", pngBytes(t, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(FileGrace + time.Minute)
	if n, err := s.CollectFiles(ctx); err != nil || n != 1 {
		t.Fatalf("collected %d, %v", n, err)
	}
	raw, _ := json.Marshal(map[string]any{"attachments": []string{f.FileID}})
	if _, _, err := c.Call(ctx, alice, "General", "general", "", "send_message", raw, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attaching a collected file: %v", err)
	}
	raw, _ = json.Marshal(map[string]any{"avatar_file_id": f.FileID})
	if _, _, err := c.Call(ctx, alice, "", "", "", "set_profile", raw, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a collected file as avatar: %v", err)
	}
}

func TestWebPSize(t *testing.T) {
	vp8x := make([]byte, 30)
	copy(vp8x, "RIFF\x00\x00\x00\x00WEBPVP8X")
	vp8x[24], vp8x[27] = 99, 49 // 100 × 50
	if w, h := webpSize(vp8x); w != 100 || h != 50 {
		t.Fatalf("VP8X: %d×%d", w, h)
	}
	if w, h := webpSize([]byte("RIFF")); w != 0 || h != 0 {
		t.Fatalf("short: %d×%d", w, h)
	}
}

func TestContentDisposition(t *testing.T) {
	got := ContentDisposition("inline", `a "b"; é.png`)
	want := `inline; filename="a _b_; _.png"; filename*=UTF-8''a%20%22b%22%3B%20%C3%A9.png`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func FuzzFileName(f *testing.F) {
	for _, s := range []string{"a.png", "", "a/b", `a\b`, "a\x00", "é", strings.Repeat("x", 256), "..", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckFileName(name)
		if err != nil && !errors.Is(err, ErrInvalidData) {
			t.Fatalf("wrong error type: %v", err)
		}
		if err == nil && (len(name) == 0 || len(name) > MaxFileNameBytes || strings.ContainsAny(name, `/\`) || !strings.ContainsFunc(name, func(rune) bool { return true })) {
			t.Fatalf("%q accepted", name)
		}
		if err == nil {
			// What is accepted goes into a header unharmed.
			if cd := ContentDisposition("attachment", name); strings.ContainsAny(cd, "\r\n\x00") {
				t.Fatalf("header %q", cd)
			}
		}
	})
}

func FuzzParseAttachments(f *testing.F) {
	for _, s := range []string{`null`, `[]`, `["0123456789abcdef0123456789abcdef"]`, `[1]`, `{}`, `"x"`,
		`["0123456789abcdef0123456789abcdef","0123456789abcdef0123456789abcdef"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ids, err := ParseAttachments(json.RawMessage(raw))
		if err != nil {
			if !errors.Is(err, ErrInvalidData) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("wrong error type: %v", err)
			}
			return
		}
		if len(ids) > MaxAttachments {
			t.Fatalf("%d attachments accepted", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !isFileID(id) || seen[id] {
				t.Fatalf("%q accepted", raw)
			}
			seen[id] = true
		}
	})
}
