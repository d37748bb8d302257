package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/iotad/iotad/internal/db"
)

// A backup is a gzipped tar: first backupManifestName, a JSON manifest
// naming every file with its size and SHA-256, then the files in the
// manifest's order. The database is a VACUUM INTO snapshot; every other
// regular file of the data directory (iota.key, community-*.key, turn.secret,
// users' .tu key files, first-invites.txt, the ACME cache) is copied as it
// is. Left out: the live database files (iotad.db, -wal, -shm, -journal),
// sockets (admin.sock), symlinks, and names starting with "." (iotad's
// temporary files).
const (
	backupManifestName = "iotad-backup.json"
	backupFormat       = "iotad-backup"
	backupVersion      = 1
	// maxManifestSize bounds the manifest read before anything is checked.
	maxManifestSize = 1 << 20
	dbFileName      = "iotad.db"
)

type backupManifest struct {
	Format  string       `json:"format"`
	Version int          `json:"version"`
	Created time.Time    `json:"created"`
	Files   []backupFile `json:"files"`
}

type backupFile struct {
	Name   string `json:"name"` // slash-separated, relative to the data directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// errPostgresBackup refuses backup and restore with --db: the archive
// holds the SQLite database, and a PostgreSQL one is the server's to dump.
var errPostgresBackup = errors.New("backup: with --db the database is PostgreSQL, which iotad backup does not copy: " +
	"dump it with pg_dump (restore with pg_restore or psql) and copy the data directory's key files yourself")

func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	data := dataFlag(fs)
	out := fs.String("out", "", "the archive to write (tar.gz, mode 0600); replaced if it exists")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out FILE is required")
	}
	if data.db != "" {
		return errPostgresBackup
	}
	m, err := writeBackup(ctx, data.dir, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s (%d files)\n", *data, *out, len(m.Files))
	return nil
}

func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", stderr)
	data := dataFlag(fs)
	in := fs.String("in", "", "the archive `iotad backup` wrote")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("restore: --in FILE is required")
	}
	if data.db != "" {
		return errPostgresBackup
	}
	m, err := restoreBackup(*in, data.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %d files from %s into %s (backup made %s)\n", len(m.Files), *in, *data, m.Created.Format(time.RFC3339))
	return nil
}

// pendingFile is one file to archive: the database snapshot is read from
// disk, the rest were read whole when listed.
type pendingFile struct {
	backupFile
	path string // when content is nil
	body []byte
}

// writeBackup snapshots the database first and copies the other files
// after: iotad writes a key file durably before the row that names it
// commits, so every key a snapshotted row needs is on disk by the time the
// files are read.
func writeBackup(ctx context.Context, data, out string) (m backupManifest, err error) {
	if _, err := os.Stat(filepath.Join(data, dbFileName)); err != nil {
		return m, fmt.Errorf("backup: %s is not an iotad data directory with its SQLite database (an iotad run with --db keeps its state in PostgreSQL: pg_dump backs that up): %w", data, err)
	}
	outDir := filepath.Dir(out)
	tmpDir, err := os.MkdirTemp(outDir, ".iotad-backup-*")
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	snapshot := filepath.Join(tmpDir, dbFileName)
	if err := db.Backup(ctx, filepath.Join(data, dbFileName), snapshot); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	dbEntry, err := hashFile(snapshot)
	if err != nil {
		return m, err
	}
	files := []pendingFile{{backupFile: backupFile{Name: dbFileName, Size: dbEntry.Size, SHA256: dbEntry.SHA256}, path: snapshot}}
	others, err := listDataFiles(data, out)
	if err != nil {
		return m, err
	}
	files = append(files, others...)
	m = backupManifest{Format: backupFormat, Version: backupVersion, Created: time.Now().UTC()}
	for _, f := range files {
		m.Files = append(m.Files, f.backupFile)
	}
	return m, writeArchive(out, m, files)
}

// listDataFiles reads every file of the data directory that a backup keeps.
func listDataFiles(data, out string) ([]pendingFile, error) {
	outInfo, _ := os.Stat(out)
	var files []pendingFile
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		rel, err := filepath.Rel(data, p)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		switch name {
		case dbFileName, dbFileName + "-wal", dbFileName + "-shm", dbFileName + "-journal":
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if outInfo != nil && os.SameFile(info, outInfo) {
			return nil
		}
		body, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since listed (a used-up temporary file)
		}
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		sum := sha256.Sum256(body)
		files = append(files, pendingFile{backupFile: backupFile{Name: name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}, body: body})
		return nil
	})
	return files, err
}

func hashFile(p string) (backupFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return backupFile{}, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return backupFile{}, fmt.Errorf("backup: %w", err)
	}
	return backupFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeArchive writes the archive durably: a 0600 temporary file beside
// out, fsynced, renamed over out, and the directory fsynced, so that out
// is the old backup or the whole new one, never a torn file.
func writeArchive(out string, m backupManifest, files []pendingFile) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := writeTarFile(tw, backupManifestName, bytes.NewReader(manifest), int64(len(manifest)), m.Created); err != nil {
		return err
	}
	for _, f := range files {
		var r io.Reader = bytes.NewReader(f.body)
		if f.body == nil {
			df, err := os.Open(f.path)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer df.Close()
			r = df
		}
		if err := writeTarFile(tw, f.Name, r, f.Size, m.Created); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncDir(filepath.Dir(out))
}

func writeTarFile(tw *tar.Writer, name string, r io.Reader, size int64, mtime time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if n, err := io.Copy(tw, r); err != nil || n != size {
		return fmt.Errorf("backup: %s: wrote %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// errNotBackup is what a file that is not a whole iotad backup gets.
var errNotBackup = errors.New("not a whole iotad backup")

// readBackup checks an archive from start to end, handing each file to fn
// with a reader of its content, and fails on anything but the exact files
// its manifest names, whole, with their hashes, followed by a sound gzip
// trailer. fn may stop reading early; what it left is read and checked.
func readBackup(r io.Reader, fn func(f backupFile, content io.Reader) error) (backupManifest, error) {
	var m backupManifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("%w: %w", errNotBackup, err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return m, fmt.Errorf("%w: %w", errNotBackup, err)
	}
	if hdr.Name != backupManifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifestSize {
		return m, fmt.Errorf("%w: it does not begin with %s", errNotBackup, backupManifestName)
	}
	dec := json.NewDecoder(io.LimitReader(tr, maxManifestSize))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: manifest: %w", errNotBackup, err)
	}
	if err := checkManifest(m); err != nil {
		return m, err
	}
	for _, want := range m.Files {
		hdr, err := tr.Next()
		if err != nil {
			return m, fmt.Errorf("%w: %s missing: %w", errNotBackup, want.Name, err)
		}
		if hdr.Name != want.Name || hdr.Typeflag != tar.TypeReg || hdr.Size != want.Size {
			return m, fmt.Errorf("%w: found %q (%d bytes) where the manifest has %q (%d bytes)", errNotBackup, hdr.Name, hdr.Size, want.Name, want.Size)
		}
		h := sha256.New()
		content := io.TeeReader(tr, h)
		if err := fn(want, content); err != nil {
			return m, err
		}
		if _, err := io.Copy(io.Discard, content); err != nil {
			return m, fmt.Errorf("%w: %s: %w", errNotBackup, want.Name, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
			return m, fmt.Errorf("%w: %s does not match its SHA-256 in the manifest", errNotBackup, want.Name)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return m, fmt.Errorf("%w: more than the manifest names, or a torn end: %v", errNotBackup, err)
	}
	// The tar ends before the gzip trailer: read to it, so that its CRC
	// and length are checked too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return m, fmt.Errorf("%w: %w", errNotBackup, err)
	}
	return m, nil
}

func checkManifest(m backupManifest) error {
	if m.Format != backupFormat {
		return fmt.Errorf("%w: manifest format %q", errNotBackup, m.Format)
	}
	if m.Version != backupVersion {
		return fmt.Errorf("backup format version %d: this iotad reads version %d", m.Version, backupVersion)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) || path.Clean(f.Name) != f.Name || strings.Contains(f.Name, `\`) || f.Name == backupManifestName {
			return fmt.Errorf("%w: the manifest names %q, not a file inside the data directory", errNotBackup, f.Name)
		}
		if seen[f.Name] || f.Size < 0 || len(f.SHA256) != 64 {
			return fmt.Errorf("%w: bad manifest entry %q", errNotBackup, f.Name)
		}
		seen[f.Name] = true
	}
	if !seen[dbFileName] {
		return fmt.Errorf("%w: no %s in it", errNotBackup, dbFileName)
	}
	return nil
}

// restoreBackup checks the whole archive first and writes nothing unless
// it is sound; then it writes the files (0600, directories 0700) into
// data, which must be empty or absent. If writing fails half-way, what
// was written is removed again.
func restoreBackup(in, data string) (backupManifest, error) {
	open := func() (*os.File, error) {
		f, err := os.Open(in)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return backupManifest{}, err
	}
	_, err = readBackup(f, func(backupFile, io.Reader) error { return nil })
	f.Close()
	if err != nil {
		return backupManifest{}, fmt.Errorf("restore %s: %w", in, err)
	}

	created, owner, err := prepareRestoreDir(data)
	if err != nil {
		return backupManifest{}, err
	}
	f, err = open()
	if err != nil {
		return backupManifest{}, err
	}
	defer f.Close()
	var written []string
	m, err := readBackup(f, func(bf backupFile, content io.Reader) error {
		p, err := restoreFile(data, bf.Name, content, owner)
		if p != "" {
			written = append(written, p)
		}
		return err
	})
	if err == nil {
		err = syncDirs(data, m)
	}
	if err != nil {
		// Undo: data was empty, and is so again.
		for i := len(written) - 1; i >= 0; i-- {
			os.Remove(written[i])
		}
		if created {
			os.RemoveAll(data)
		} else {
			entries, _ := os.ReadDir(data)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(data, e.Name()))
			}
		}
		return m, fmt.Errorf("restore %s: %w", in, err)
	}
	return m, nil
}

// fileOwner is who restored files belong to: the owner of an existing data
// directory when root restores into it (the directory a systemd unit's
// dynamic user owns), else nobody in particular (the restoring user).
type fileOwner struct {
	uid, gid int
	set      bool
}

func prepareRestoreDir(data string) (created bool, owner fileOwner, err error) {
	info, err := os.Stat(data)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(data, 0o700); err != nil {
			return false, owner, fmt.Errorf("restore: %w", err)
		}
		return true, owner, nil
	case err != nil:
		return false, owner, fmt.Errorf("restore: %w", err)
	case !info.IsDir():
		return false, owner, fmt.Errorf("restore: %s is not a directory", data)
	}
	entries, err := os.ReadDir(data)
	if err != nil {
		return false, owner, fmt.Errorf("restore: %w", err)
	}
	if len(entries) > 0 {
		return false, owner, fmt.Errorf("restore: %s is not empty (it has %s): restore only into an empty or new directory", data, entries[0].Name())
	}
	if err := os.Chmod(data, 0o700); err != nil {
		return false, owner, fmt.Errorf("restore: %w", err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		owner = fileOwner{uid: int(st.Uid), gid: int(st.Gid), set: true}
	}
	return false, owner, nil
}

// restoreFile writes one file, creating its directories; it returns each
// path it created (directories too, for the undo) joined by the caller.
func restoreFile(data, name string, content io.Reader, owner fileOwner) (string, error) {
	p := filepath.Join(data, filepath.FromSlash(name))
	if dir := filepath.Dir(p); dir != data {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		if owner.set {
			for d := dir; d != data; d = filepath.Dir(d) {
				os.Lchown(d, owner.uid, owner.gid)
			}
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(f, content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && owner.set {
		err = os.Chown(p, owner.uid, owner.gid)
	}
	if err != nil {
		return p, fmt.Errorf("restore: %s: %w", name, err)
	}
	return p, nil
}

// syncDirs makes the restored names durable: every directory a file went
// into, and data itself.
func syncDirs(data string, m backupManifest) error {
	dirs := map[string]bool{data: true}
	for _, f := range m.Files {
		dirs[filepath.Dir(filepath.Join(data, filepath.FromSlash(f.Name)))] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(data))
}
