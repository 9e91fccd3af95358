//go:build !linux || 386

package datagram

import "net"

// kernelStats is not implemented here (linux/386 has no direct getsockopt
// system call in package syscall).
func kernelStats(*net.UDPConn) (queued, drops uint64, ok bool) { return 0, 0, false }
