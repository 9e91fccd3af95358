// Package datagram delivers raw UDP payloads of flow exporters (NetFlow,
// IPFIX, sFlow) to a handler, either from sockets (Listener) or from a pcap
// capture of exported traffic (Replay, like nfacctd -I).
//
// It does not decode anything: decoders sit behind the Handler.
package datagram

import (
	"net/netip"
	"time"
)

// Datagram is one UDP payload. Payload is only valid during the handler call:
// its buffer is reused for a later datagram as soon as the handler returns.
type Datagram struct {
	Payload []byte
	// Source is the exporter's address and port. IPv4 exporters are always
	// given as IPv4 (192.0.2.1), also when they reached a dual-stack socket.
	Source netip.AddrPort
	// Received is the wall clock after the read on a socket, or the packet's
	// capture timestamp on replay.
	Received time.Time
}

// Handler is called for each datagram. A Listener calls it from one goroutine
// per socket, so calls for one socket are sequential and in arrival order.
type Handler func(*Datagram)
