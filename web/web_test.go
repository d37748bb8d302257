package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, ctype string
	}{
		{"/", "text/html; charset=utf-8"},
		{"/app.js", "text/javascript; charset=utf-8"},
		{"/crypto.js", "text/javascript; charset=utf-8"},
		{"/vendor/noble-x448.js", "text/javascript; charset=utf-8"},
		{"/app.css", "text/css; charset=utf-8"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		res := rec.Result()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tc.ctype {
			t.Fatalf("%s: %d %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Fatalf("%s: CSP %q", tc.path, csp)
		}
		etag := res.Header.Get("ETag")
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Fatalf("%s: revalidation with its ETag gave %d", tc.path, rec.Code)
		}
	}
	req := httptest.NewRequest("GET", "/app.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	zr, err := gzip.NewReader(rec.Body)
	if err != nil || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %v", err)
	}
	body, _ := io.ReadAll(zr)
	if !strings.Contains(string(body), "import * as c from") {
		t.Fatal("gzipped app.js does not decompress to app.js")
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/web.go", nil))
	if rec.Code != 404 {
		t.Fatalf("a file that is not part of the page: %d", rec.Code)
	}
}

// TestPolicyReachesSiblingPorts: the page may load images from, and
// upload to, its host's other ports (a community on a port of its own),
// and nothing else is added for a Host CSP cannot name.
func TestPolicyReachesSiblingPorts(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"127.0.0.1:1984", "127.0.0.1:*"},
		{"chat.example.org", "chat.example.org:*"},
		{"Chat.Example.org:443", "Chat.Example.org:*"},
		{"[::1]:1984", ""},
		{"", ""},
		{"evil.example; script-src *", ""},
		{"a b:1", ""},
	} {
		csp := policy(tc.host)
		if tc.want == "" {
			if csp != policy("") || strings.Contains(csp, ":*") {
				t.Errorf("%q: %s", tc.host, csp)
			}
			continue
		}
		if !strings.Contains(csp, "img-src 'self' data: blob: "+tc.want+";") || !strings.Contains(csp, "connect-src 'self' ws: wss: "+tc.want+";") {
			t.Errorf("%q: %s", tc.host, csp)
		}
	}
}
