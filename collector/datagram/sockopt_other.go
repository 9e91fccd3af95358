//go:build !linux

package datagram

import (
	"errors"
	"net"
	"syscall"
)

const reusePortSupported = false

func reusePortControl(_, _ string, _ syscall.RawConn) error {
	return errors.New("SO_REUSEPORT not supported on this system")
}

func setReadBuffer(conn *net.UDPConn, size int) (granted int, forced bool, err error) {
	// The size granted cannot be read back portably; report the request.
	return size, false, conn.SetReadBuffer(size)
}

func readBufferSize(*net.UDPConn) (int, error) { return 0, nil }
