//go:build unix

package api

import "syscall"

// hasBytes reports whether fd has a byte to read, the peer's end, or an
// error, all of which the next read must see; false means it would block.
// It consumes nothing.
func hasBytes(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN
}
