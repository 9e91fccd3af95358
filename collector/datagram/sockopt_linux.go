//go:build linux

package datagram

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// reusePortControl sets SO_REUSEPORT before bind, so that several sockets
// share one address and the kernel spreads exporters over them.
func reusePortControl(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
	}
	return nil
}

// setReadBuffer asks for size bytes of receive buffer. SO_RCVBUF is clamped
// to net.core.rmem_max; when that happens SO_RCVBUFFORCE (CAP_NET_ADMIN)
// lifts the limit. A collector running as root is expected to get what it was
// configured with rather than silently lose datagrams; without the capability
// the clamped size stays and the caller warns. granted is SO_RCVBUF as read
// back, which Linux doubles.
func setReadBuffer(conn *net.UDPConn, size int) (granted int, forced bool, err error) {
	err = rawControl(conn, func(fd uintptr) error {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			return err
		}
		got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			return err
		}
		if got < size && unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) == nil {
			forced = true
			if got, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil {
				return err
			}
		}
		granted = got
		return nil
	})
	return granted, forced, err
}

func readBufferSize(conn *net.UDPConn) (int, error) {
	var size int
	err := rawControl(conn, func(fd uintptr) error {
		var err error
		size, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		return err
	})
	return size, err
}
