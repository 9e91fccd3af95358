package bgp

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// setMD5 gives the listening socket the TCP MD5 signature key (RFC 2385) of
// every peer prefix that has a password: the kernel then signs and checks
// every segment of their sessions, and drops the unsigned.
func setMD5(ln net.Listener, peers []PeerConfiguration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	v4 := tl.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap().Is4()
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, p := range peers {
			if p.Password == "" || serr != nil {
				continue
			}
			sig := unix.TCPMD5Sig{Flags: unix.TCP_MD5SIG_FLAG_PREFIX, Keylen: uint16(len(p.Password))}
			copy(sig.Key[:], p.Password)
			a := p.Prefix.Addr()
			bits := p.Prefix.Bits()
			switch {
			case v4 && a.Is4():
				sig.Addr.Family = unix.AF_INET
				b := a.As4()
				copy(sig.Addr.Data[2:6], b[:])
			case !v4:
				// a dual-stack socket sees IPv4 peers as IPv4-mapped
				if a.Is4() {
					bits += 96
				}
				sig.Addr.Family = unix.AF_INET6
				b := a.As16()
				copy(sig.Addr.Data[6:22], b[:])
			default:
				continue // an IPv6 peer on an IPv4 socket cannot come
			}
			sig.Prefixlen = uint8(bits)
			if e := unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG_EXT, &sig); e != nil {
				serr = fmt.Errorf("bgp: TCP MD5 key for %s: %w", p.Prefix, e)
				if errors.Is(e, unix.ENOPROTOOPT) {
					serr = fmt.Errorf("%w (this kernel has no TCP MD5 signatures, CONFIG_TCP_MD5SIG: expected no password)", serr)
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
