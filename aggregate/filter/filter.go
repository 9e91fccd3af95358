// Package filter runs pmacct's aggregate_filter, a libpcap expression, on flow
// records.
//
// nfacctd and sfacctd have no packet to filter, so they write the fields of each
// flow record into a fixed dummy Ethernet frame and run the compiled BPF program
// on it (src/nfacctd.c and src/sfacctd.c, the req->bpf_filter branches). This
// package builds the same frame:
//
//   - Ethernet: destination and source MAC, then an 802.1Q tag when the
//     record has a VLAN, then the EtherType.
//   - An MPLS label stack (0x8847) when the record has one (a captured or
//     sampled packet): top label, then up to two labels between (their
//     values are not kept: they read as 0), then the bottom one; pmacctd
//     filters the packet itself, where "tcp" alone does not match a labelled
//     frame either, "mpls and tcp" does.
//   - IPv4 (0x0800): version/IHL 0x45, TOS, protocol, source and destination;
//     total length, id, fragment offset, TTL and checksum stay zero.
//   - IPv6 (0x86dd): version 6, payload length 100, hop limit 64, next header,
//     source and destination.
//   - After the IP header, whatever the protocol: source port, destination
//     port and, at byte 13, the TCP flags.
//
// The frame is as long as pmacct's capture length (55 bytes for IPv4, 77 for
// IPv6, 4 more with a tag) and the BPF "len" is pmacct's fake 100. Records
// with neither IPv4 nor IPv6 addresses get only the Ethernet header, carrying
// the record's EtherType.
//
// Where flowdex differs from pmacct, on purpose: the tag carries the record's
// CoS in its priority bits (pmacct leaves them zero), the IPv6 traffic class
// carries TOS (pmacct leaves it zero), and the tag is added whenever VLAN is
// non-zero (nfacctd only adds it when the high byte of the VLAN field is
// non-zero, so VLANs 1-255 are untagged there; sfacctd tags any VLAN).
//
// As in pmacct, a tagged frame only matches IP primitives after "vlan" in the
// expression: "src net 10.0.0.0/8" alone does not match a record with VLAN 10,
// "vlan and src net 10.0.0.0/8" does.
package filter

import (
	"fmt"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Filter is a compiled aggregate_filter. Match is safe for concurrent use.
type Filter struct {
	expr string
	vm   *bpf.VM
}

// snapLen is the capture length the expression is compiled for; the program
// returns it for a match. Only zero versus non-zero matters here.
const snapLen = 65535

// wireLen is what pmacct sets as the dummy packet's wire length, seen by the
// BPF "len" (less, greater).
const wireLen = 100

// Compile compiles a libpcap filter expression for Ethernet frames.
func Compile(expr string) (*Filter, error) {
	raw, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, snapLen, expr)
	if err != nil {
		return nil, fmt.Errorf("aggregate filter %q: libpcap: %w", expr, err)
	}
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		ins := bpf.RawInstruction{Op: r.Code, Jt: r.Jt, Jf: r.Jf, K: r.K}.Disassemble()
		switch v := ins.(type) {
		case bpf.RawInstruction:
			return nil, fmt.Errorf("aggregate filter %q: instruction %d (opcode %#x) is not supported by the BPF interpreter", expr, i, v.Op)
		case bpf.LoadExtension:
			if v.Num != bpf.ExtLen {
				return nil, fmt.Errorf("aggregate filter %q: BPF extension %d is not supported", expr, v.Num)
			}
			// The interpreter would answer the frame's length; pmacct's
			// packet header says 100.
			ins = bpf.LoadConstant{Dst: bpf.RegA, Val: wireLen}
		case bpf.NegateA:
			// Not implemented by the interpreter: -A is A*(2^32-1) modulo 2^32.
			ins = bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: ^uint32(0)}
		}
		prog[i] = ins
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("aggregate filter %q: %w", expr, err)
	}
	return &Filter{expr: expr, vm: vm}, nil
}

// String returns the expression the filter was compiled from.
func (f *Filter) String() string { return f.expr }

// Match reports whether the record passes the filter. A nil Filter passes
// everything.
func (f *Filter) Match(r *flow.Record) bool {
	if f == nil {
		return true
	}
	var buf [frameMax]byte
	n := frame(&buf, r)
	v, err := f.vm.Run(buf[:n])
	return err == nil && v != 0
}

// Frame layout, as in pmacct's dummy packets.
const (
	ethLen   = 14
	tagLen   = 4
	ip4Len   = 20
	ip6Len   = 40
	l4Len4   = 21 // what is left of pmacct's 55-byte capture after IPv4
	l4Len6   = 23 // and of its 77-byte capture after IPv6
	mplsMax  = 4  // labels written
	frameMax = ethLen + tagLen + 4*mplsMax + ip6Len + l4Len6
)

// frame writes the dummy packet for r into buf and returns its length.
func frame(buf *[frameMax]byte, r *flow.Record) int {
	copy(buf[0:6], r.DstMAC[:])
	copy(buf[6:12], r.SrcMAC[:])
	off := 12
	if r.VLAN != 0 {
		buf[12], buf[13] = 0x81, 0x00
		tci := uint16(r.CoS&7)<<13 | r.VLAN&0x0fff
		buf[14], buf[15] = byte(tci>>8), byte(tci)
		off = 16
	}
	v4 := r.SrcIP.Is4() || (!r.SrcIP.IsValid() && r.DstIP.Is4())
	v6 := !v4 && (r.SrcIP.Is6() || r.DstIP.Is6())
	ipAt := off + 2 // where the IP header starts
	if r.MPLSStackDepth > 0 && (v4 || v6) {
		buf[off], buf[off+1] = 0x88, 0x47
		n := min(int(r.MPLSStackDepth), mplsMax)
		for i := range n {
			label := uint32(0)
			switch i {
			case 0:
				label = r.MPLSLabelTop
			case n - 1:
				label = r.MPLSLabelBottom
			}
			v := label<<12 | 64 // TTL
			if i == n-1 {
				v |= 0x100 // bottom of stack
			}
			buf[ipAt], buf[ipAt+1], buf[ipAt+2], buf[ipAt+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			ipAt += 4
		}
	}
	switch {
	case v4:
		if ipAt == off+2 {
			buf[off], buf[off+1] = 0x08, 0x00
		}
		ip := buf[ipAt : ipAt+ip4Len]
		ip[0] = 0x45
		ip[1] = r.TOS
		ip[9] = r.Proto
		if r.SrcIP.Is4() {
			a := r.SrcIP.As4()
			copy(ip[12:16], a[:])
		}
		if r.DstIP.Is4() {
			a := r.DstIP.As4()
			copy(ip[16:20], a[:])
		}
		l4(buf[ipAt+ip4Len:], r)
		return ipAt + ip4Len + l4Len4
	case v6:
		if ipAt == off+2 {
			buf[off], buf[off+1] = 0x86, 0xdd
		}
		ip := buf[ipAt : ipAt+ip6Len]
		ip[0] = 0x60 | r.TOS>>4
		ip[1] = r.TOS << 4
		ip[4], ip[5] = 0, wireLen
		ip[6] = r.Proto
		ip[7] = 64
		if r.SrcIP.Is6() {
			a := r.SrcIP.As16()
			copy(ip[8:24], a[:])
		}
		if r.DstIP.Is6() {
			a := r.DstIP.As16()
			copy(ip[24:40], a[:])
		}
		l4(buf[ipAt+ip6Len:], r)
		return ipAt + ip6Len + l4Len6
	default:
		buf[off], buf[off+1] = byte(r.EType>>8), byte(r.EType)
		return off + 2
	}
}

func l4(b []byte, r *flow.Record) {
	b[0], b[1] = byte(r.SrcPort>>8), byte(r.SrcPort)
	b[2], b[3] = byte(r.DstPort>>8), byte(r.DstPort)
	b[13] = r.TCPFlags
}
