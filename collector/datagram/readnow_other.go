//go:build !unix

package datagram

import (
	"errors"
	"net"
	"net/netip"
)

// errEmpty: the socket buffer holds no datagram.
var errEmpty = errors.New("socket buffer empty")

// readNow is not implemented here: Drain hands over what the read loop has
// read, and what the kernel holds is lost with the socket.
func readNow(*net.UDPConn, []byte) (int, netip.AddrPort, error) { return 0, netip.AddrPort{}, errEmpty }
