//go:build linux && !386

package datagram

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelStats reads SO_MEMINFO: the socket's memory counters, among them the
// number of datagrams the kernel dropped on it (the drops column of
// /proc/net/udp). One getsockopt per socket on demand is cheaper than
// SO_RXQ_OVFL, which adds a control message to every read, and it also sees
// drops after the last read. (x/sys/unix has no getsockopt for an array of
// counters, hence the system call.)
func kernelStats(conn *net.UDPConn) (queued, drops uint64, ok bool) {
	if conn == nil {
		return 0, 0, false
	}
	var info [unix.SK_MEMINFO_VARS]uint32
	err := rawControl(conn, func(fd uintptr) error {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			return errno
		}
		if size < uint32(unsafe.Sizeof(info)) {
			// Kernels before 4.8 have no drops counter here.
			return unix.ENOPROTOOPT
		}
		return nil
	})
	if err != nil {
		return 0, 0, false
	}
	return uint64(info[unix.SK_MEMINFO_RMEM_ALLOC]), uint64(info[unix.SK_MEMINFO_DROPS]), true
}
