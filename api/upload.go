package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/iotad/iotad/community"
)

// Upload concurrency (PROTOCOL §9 "Files and images"): a member's uploads
// and one address's, at once.
const (
	maxUploadsPerMember = 3
	maxUploadsPerAddr   = 8
	// Config.UploadTimeout plus the body at uploadMinRate bounds how long
	// an upload may take: 25 MiB at 64 KiB/s is 400 s.
	uploadMinRate = 64 << 10
)

// uploadGate counts the uploads in progress per member and per address.
type uploadGate struct {
	mu     sync.Mutex
	byUser map[string]int
	byAddr map[string]int
}

func (g *uploadGate) enter(user, addr string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byUser == nil {
		g.byUser, g.byAddr = map[string]int{}, map[string]int{}
	}
	if g.byUser[user] >= maxUploadsPerMember || g.byAddr[addr] >= maxUploadsPerAddr {
		return false
	}
	g.byUser[user]++
	g.byAddr[addr]++
	return true
}

func (g *uploadGate) leave(user, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byUser[user]--; g.byUser[user] <= 0 {
		delete(g.byUser, user)
	}
	if g.byAddr[addr]--; g.byAddr[addr] <= 0 {
		delete(g.byAddr, addr)
	}
}

// fileRoutes mounts the upload and download paths of community c.
func (s *Server) fileRoutes(r chi.Router, c *communityAPI) {
	if c == nil {
		return
	}
	r.Put("/api/upload/{upload_id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.allowCORS(w, r) {
			uploadError(w, http.StatusForbidden, ErrTypePermission, "this origin may not upload here")
			return
		}
		s.upload(w, r, c)
	})
	r.Options("/api/upload/{upload_id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.allowCORS(w, r) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "PUT")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	})
	r.Get("/files/{file_id}/{name}", func(w http.ResponseWriter, r *http.Request) { s.download(w, r, c) })
	r.Head("/files/{file_id}/{name}", func(w http.ResponseWriter, r *http.Request) { s.download(w, r, c) })
}

// allowCORS lets the page served on another of iotad's ports (or an origin
// the operator allowed) upload to this community's port, as checkOrigin
// lets it open the socket; the ticket stays the credential. A request
// with no Origin, or the port's own, needs nothing.
func (s *Server) allowCORS(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.checkOrigin(r) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	return true
}

type uploadReply struct {
	FileID string `json:"file_id"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	URL    string `json:"url"`
}

func uploadError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"message":%q}`+"\n", errType, msg)
}

// uploadStatus picks the HTTP status and wire error type of a failed upload.
func uploadStatus(err error) (int, string) {
	switch {
	case errors.Is(err, community.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, ErrTypeInvalidData
	case errors.Is(err, community.ErrQuota):
		return http.StatusInsufficientStorage, ErrTypeInvalidData
	case errors.Is(err, community.ErrNotFound):
		return http.StatusNotFound, ErrTypeNotFound
	case errors.Is(err, community.ErrConflict):
		return http.StatusConflict, ErrTypeConflict
	case errors.Is(err, community.ErrPermission):
		return http.StatusForbidden, ErrTypePermission
	case errors.Is(err, community.ErrInvalidData):
		return http.StatusBadRequest, ErrTypeInvalidData
	}
	return http.StatusInternalServerError, ErrTypeInternal
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, c *communityAPI) {
	ctx := r.Context()
	if r.ContentLength > c.c.MaxUpload() {
		uploadError(w, http.StatusRequestEntityTooLarge, ErrTypeInvalidData, "larger than the upload allows")
		return
	}
	id := chi.URLParam(r, "upload_id")
	// The ticket is read, not spent, before the gate: a 429 leaves it for
	// the retry.
	t, err := c.c.UploadTicket(ctx, id)
	if err != nil {
		status, typ := uploadStatus(err)
		uploadError(w, status, typ, err.Error())
		return
	}
	addr, _ := clientHost(r, s.cfg.TrustedProxies)
	if !c.uploads.enter(t.UserID, addr) {
		w.Header().Set("Retry-After", "1")
		uploadError(w, http.StatusTooManyRequests, ErrTypeRateLimited, "too many uploads at once")
		return
	}
	defer c.uploads.leave(t.UserID, addr)
	if t, err = c.c.ClaimUpload(ctx, id); err != nil {
		status, typ := uploadStatus(err)
		uploadError(w, status, typ, err.Error())
		return
	}
	if r.ContentLength >= 0 && r.ContentLength != t.Size {
		status := http.StatusBadRequest
		if r.ContentLength > t.Size {
			status = http.StatusRequestEntityTooLarge
		}
		c.c.DropTicket(ctx, t.ID)
		uploadError(w, status, ErrTypeInvalidData, "Content-Length is not the ticket's size "+strconv.FormatInt(t.Size, 10))
		return
	}
	deadline := s.cfg.UploadTimeout + time.Duration(t.Size/uploadMinRate)*time.Second
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(deadline))
	f, err := c.c.StoreUpload(ctx, t, r.Body)
	if err != nil {
		status, typ := uploadStatus(err)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The client stalled: its fault, not the server's, and no
			// reason to log.
			uploadError(w, http.StatusRequestTimeout, ErrTypeInvalidData, "the upload took too long")
		case status == http.StatusInternalServerError:
			s.log.Error("store upload", slog.String("community", c.c.ID), slog.Any("err", err))
			uploadError(w, status, typ, "internal error")
		default:
			uploadError(w, status, typ, err.Error())
		}
		return
	}
	writeJSON(w, uploadReply{FileID: f.FileID, SHA256: f.SHA256, Size: f.Size, Type: f.Type, Width: f.Width, Height: f.Height, URL: f.URL})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	json.NewEncoder(w).Encode(v)
}

// download serves a file. Its id is the capability (128 random bits): an
// <img> cannot log in on a socket first, as on Discord's CDN.
func (s *Server) download(w http.ResponseWriter, r *http.Request, c *communityAPI) {
	f, err := c.c.File(r.Context(), chi.URLParam(r, "file_id"))
	if err != nil {
		status, _ := uploadStatus(err)
		http.Error(w, http.StatusText(status), status)
		return
	}
	file, err := os.Open(f.Path)
	if err != nil {
		// The file id is what lets anyone download the file, so the log
		// names the bytes by their hash instead.
		s.log.Error("open stored file", slog.String("sha256", f.SHA256), slog.Any("err", err))
		http.Error(w, "the file's bytes are missing on this node", http.StatusInternalServerError)
		return
	}
	defer file.Close()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	// cross-origin: the page on iotad's main port shows the images of a
	// community on a port of its own, and Chromium holds two ports of an
	// IP address to be two sites, so same-site would block them. It gives
	// nothing away: the id in the url is the capability, and whoever has
	// the url can fetch the file without any page.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", `"`+f.SHA256+`"`)
	if community.IsInlineType(f.Type) {
		h.Set("Content-Type", f.Type)
		h.Set("Content-Disposition", community.ContentDisposition("inline", f.Name))
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", community.ContentDisposition("attachment", f.Name))
	}
	http.ServeContent(w, r, "", time.Time{}, file)
}
