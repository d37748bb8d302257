package api

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inlineWrites says Session.Wake may write a socket's frames itself.
const inlineWrites = true

// maxInlineFrames bounds the frames one inline write takes; the rest wait
// for the writer. A run is at most maxRun events' frames and a reply or
// two, so in practice it is never reached.
const maxInlineFrames = 2 * maxRun

// inlineWriter is one writev's arguments and result, with a method value
// made once: RawConn.Write takes a callback, and a closure made per call
// would allocate for every delivery. Kept in a pool, not per session, so
// that an idle socket does not hold one.
type inlineWriter struct {
	frames [][]byte
	n      int
	errno  syscall.Errno
	iov    [maxInlineFrames]unix.Iovec
	used   int // iovecs the last writev filled
	try    func(fd uintptr) bool
}

var inlineWriters = sync.Pool{New: func() any {
	w := new(inlineWriter)
	w.try = w.writev
	return w
}}

// writev is a raw system call: the socket is non-blocking, so it returns
// at once, and a raw call skips the scheduler's bookkeeping for a blocking
// one (the net package's writes pay it). It always reports done: a write
// that would block is the writer's to finish, not the waker's to wait for.
func (w *inlineWriter) writev(fd uintptr) bool {
	k := 0
	for _, f := range w.frames {
		if k == len(w.iov) {
			break
		}
		if len(f) > 0 {
			w.iov[k].Base = &f[0]
			w.iov[k].SetLen(len(f))
			k++
		}
	}
	w.n, w.errno, w.used = 0, 0, k
	if k == 0 {
		return true
	}
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(k))
		if errno == unix.EINTR {
			continue
		}
		if errno == 0 {
			w.n = int(n)
		}
		w.errno = errno
		return true
	}
}

// writeNow writes what the kernel takes of frames without waiting and
// says how many bytes that was; a socket whose buffer is full took none,
// which is no error.
func writeNow(rc syscall.RawConn, frames [][]byte) (int, error) {
	w := inlineWriters.Get().(*inlineWriter)
	w.frames = frames
	err := rc.Write(w.try)
	n, errno := w.n, w.errno
	w.frames = nil
	clear(w.iov[:w.used]) // the pool must not keep frames alive
	inlineWriters.Put(w)
	switch {
	case err != nil:
		return 0, err
	case errno != 0 && errno != unix.EAGAIN:
		return 0, os.NewSyscallError("writev", errno)
	}
	return n, nil
}
