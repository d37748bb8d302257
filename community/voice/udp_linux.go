package voice

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpIO makes the media socket's reads and writes as raw system calls,
// which the Go scheduler is not told of. A call through the net package
// enters the scheduler's syscall state, and the first one after the
// process idled wakes the runtime's monitor thread, which then polls
// every 20 µs for as long as anything runs: in a call, where each packet
// arrives at an idle process, that was a tenth of the CPU. The socket is
// non-blocking, so these calls return at once; when one would block, the
// goroutine parks on the poller as the net package's own would.
type udpIO struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket, which reaches IPv4 peers as mapped addresses

	// writeBatch's scratch, kept across batches; the caller serialises it.
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
}

func newUDPIO(c *net.UDPConn) (udpIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return udpIO{}, err
	}
	// The socket's own family, not its address's: Go opens a wildcard
	// "udp" listener, 0.0.0.0 included, as a dual-stack AF_INET6 socket.
	var family int
	ctlErr := rc.Control(func(fd uintptr) {
		family, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	})
	if err = errors.Join(ctlErr, err); err != nil {
		return udpIO{}, err
	}
	return udpIO{rc: rc, v6: family == unix.AF_INET6}, nil
}

// reaches says whether writeBatch can address to from this socket.
func (u *udpIO) reaches(to netip.AddrPort) bool {
	return u.v6 || to.Addr().Unmap().Is4()
}

// sockaddr writes to's address into name as the kernel wants it for this
// socket's family, and returns its length.
func (u *udpIO) sockaddr(name *unix.RawSockaddrInet6, to netip.AddrPort) uint32 {
	if !u.v6 {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16(port(&sa.Port), to.Port())
		return unix.SizeofSockaddrInet4
	}
	*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: to.Addr().As16()}
	binary.BigEndian.PutUint16(port(&name.Port), to.Port())
	return unix.SizeofSockaddrInet6
}

// port is a sockaddr's port field as bytes: it holds network byte order.
func port(field *uint16) []byte { return (*[2]byte)(unsafe.Pointer(field))[:] }

// call runs the non-blocking system call name until it neither blocks nor
// is interrupted, parking on the poller while it would block. The kernel's
// refusal comes back as an *os.SyscallError; the poller's (the socket
// closed) as the net package's own error.
func call(name string, wait func(func(uintptr) bool) error, try func(fd uintptr) (uintptr, syscall.Errno)) (uintptr, error) {
	var r uintptr
	var errno syscall.Errno
	err := wait(func(fd uintptr) bool {
		for {
			r, errno = try(fd)
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError(name, errno)
	}
	return r, nil
}

func (u *udpIO) readFrom(p []byte) (int, netip.AddrPort, error) {
	if len(p) == 0 {
		return 0, netip.AddrPort{}, nil
	}
	var from unix.RawSockaddrAny
	n, err := call("recvfrom", u.rc.Read, func(fd uintptr) (uintptr, syscall.Errno) {
		size := uint32(unix.SizeofSockaddrAny)
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&size)))
		return r, errno
	})
	if err != nil {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: err}
	}
	var addr netip.AddrPort
	switch from.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&from))
		addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), binary.BigEndian.Uint16(port(&sa.Port)))
	case unix.AF_INET6:
		// Mapped IPv4 addresses stay mapped, as the net package returns
		// them; pion canonicalises them itself.
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&from))
		addr = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), binary.BigEndian.Uint16(port(&sa.Port)))
	}
	return int(n), addr, nil
}

func (u *udpIO) writeTo(p []byte, to netip.AddrPort) (int, error) {
	if !u.reaches(to) {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: unix.EAFNOSUPPORT}
	}
	var name unix.RawSockaddrInet6
	size := u.sockaddr(&name, to)
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	_, err := call("sendto", u.rc.Write, func(fd uintptr) (uintptr, syscall.Errno) {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(base), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&name)), uintptr(size))
		return r, errno
	})
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: err}
	}
	return len(p), nil
}

// writeBatch sends bufs[i] to to[i], all of which reaches, in as few
// sendmmsg calls as the kernel takes. A datagram the kernel refuses (a
// peer's address gone bad) is dropped and the rest still go: UDP is
// best-effort.
func (u *udpIO) writeBatch(bufs [][]byte, to []netip.AddrPort) {
	n := len(bufs)
	if cap(u.hdrs) < n {
		u.hdrs = make([]unix.Mmsghdr, n)
		u.iovs = make([]unix.Iovec, n)
		u.names = make([]unix.RawSockaddrInet6, n)
	}
	hdrs, iovs, names := u.hdrs[:n], u.iovs[:n], u.names[:n]
	for i, b := range bufs {
		iovs[i] = unix.Iovec{}
		if len(b) > 0 {
			iovs[i].Base = &b[0]
		}
		iovs[i].SetLen(len(b))
		hdrs[i] = unix.Mmsghdr{}
		hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		hdrs[i].Hdr.Namelen = u.sockaddr(&names[i], to[i])
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	for sent := 0; sent < n; {
		k, err := call("sendmmsg", u.rc.Write, func(fd uintptr) (uintptr, syscall.Errno) {
			r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[sent])), uintptr(n-sent), 0, 0, 0)
			return r, errno
		})
		if err != nil {
			var refused *os.SyscallError
			if !errors.As(err, &refused) {
				return // the socket is closed
			}
			k = 1 // sendmmsg fails only when its first datagram does
		}
		sent += int(k)
	}
}
