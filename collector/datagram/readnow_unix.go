//go:build unix

package datagram

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// errEmpty: the socket buffer holds no datagram.
var errEmpty = errors.New("socket buffer empty")

// readNow reads one datagram if the socket buffer holds one, without
// waiting (errEmpty). It goes around the runtime's poller, which refuses to
// read at all once a deadline has passed: Drain sets one to wake the read
// loop.
func readNow(conn *net.UDPConn, buf []byte) (n int, src netip.AddrPort, err error) {
	var from unix.Sockaddr
	cerr := rawControl(conn, func(fd uintptr) error {
		for {
			n, from, err = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != unix.EINTR {
				return nil
			}
		}
	})
	switch {
	case cerr != nil:
		return 0, src, cerr
	case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
		return 0, src, errEmpty
	case err != nil:
		return 0, src, err
	}
	switch a := from.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		src = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return n, src, nil
}
