//go:build !linux

package bgp

import (
	"errors"
	"net"
)

// setMD5 refuses passwords: TCP MD5 signatures are Linux's here.
func setMD5(_ net.Listener, peers []PeerConfiguration) error {
	for _, p := range peers {
		if p.Password != "" {
			return errors.New("bgp: peer passwords (TCP MD5) need Linux")
		}
	}
	return nil
}
