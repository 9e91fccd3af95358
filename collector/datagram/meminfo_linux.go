//go:build linux && !386

package datagram

import (
	"net"
	"syscall"
	"unsafe"
)

// SO_MEMINFO returns the socket's memory counters, among them the number of
// datagrams the kernel dropped on it (the drops column of /proc/net/udp). One
// getsockopt per socket on demand is cheaper than SO_RXQ_OVFL, which adds a
// control message to every read, and it also sees drops after the last read.
const (
	soMemInfo          = 55
	skMemInfoRmemAlloc = 0
	skMemInfoDrops     = 8
	skMemInfoVars      = 9
)

func kernelStats(conn *net.UDPConn) (queued, drops uint64, ok bool) {
	if conn == nil {
		return 0, 0, false
	}
	var info [skMemInfoVars]uint32
	err := rawControl(conn, func(fd uintptr) error {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, soMemInfo,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			return errno
		}
		if size < uint32(unsafe.Sizeof(info)) {
			// Kernels before 4.8 have no drops counter here.
			return syscall.ENOPROTOOPT
		}
		return nil
	})
	if err != nil {
		return 0, 0, false
	}
	return uint64(info[skMemInfoRmemAlloc]), uint64(info[skMemInfoDrops]), true
}
