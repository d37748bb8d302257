// Package web is the browser client, embedded in the binary and served as
// it is: no build step at run time.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed index.html app.js app.css crypto.js vendor/noble-x448.js
var files embed.FS

// policy allows only what the page itself serves, plus WebSockets to any
// community (they may live on other hosts), plus images and uploads on the
// page's host at any port: iotad serves a second community on a port of its
// own, and that community's files come from there (PROTOCOL §9 "Files and
// images").
func policy(host string) string {
	sibling := ""
	if h := siblingSource(host); h != "" {
		sibling = " " + h
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:" + sibling + "; " +
		"connect-src 'self' ws: wss:" + sibling + "; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// siblingSource is the CSP source "host:*" for the Host a request named,
// or "" when it is not a name CSP can express (an IPv6 literal) or not a
// plain host name at all. Without a scheme the source matches the page's
// own (and https from an http page).
func siblingSource(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		return ""
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return ""
		}
	}
	return host + ":*"
}

type asset struct {
	body, gzipped []byte
	etag, ctype   string
}

// Handler serves the embedded files with a strict Content-Security-Policy
// and ETags; "/" is index.html.
func Handler() http.Handler {
	assets := map[string]*asset{}
	fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, _ := files.ReadFile(p)
		sum := sha256.Sum256(body)
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		w.Write(body)
		w.Close()
		ctype := mime.TypeByExtension(path.Ext(p))
		if strings.HasSuffix(p, ".js") {
			ctype = "text/javascript; charset=utf-8"
		}
		assets["/"+p] = &asset{body: body, gzipped: gz.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	assets["/"] = assets["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := assets[r.URL.Path]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", policy(r.Host))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Content-Type", a.ctype)
		h.Set("Vary", "Accept-Encoding")
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.body
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = a.gzipped
		}
		w.Write(body)
	})
}
