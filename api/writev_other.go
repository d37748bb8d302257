//go:build !linux

package api

import (
	"errors"
	"syscall"
)

// inlineWrites is false where writeNow is not written: the writer
// goroutine writes every frame, as it did before.
const inlineWrites = false

func writeNow(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.New("api: inline writes are not built on this system")
}
