// Package pcap captures packets with libpcap, on an interface or from a file,
// and turns each into a flow record as pmacctd does: one packet, bytes the IP
// length, the capture time as arrival.
package pcap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/pace"
	"github.com/flowdex/flowdex/collector/packet"
)

// Configuration of a capture.
type Configuration struct {
	Interface string  `toml:"interface,omitempty"`   // a device, or "any"; "" when File is set
	File      string  `toml:"file,omitempty"`        // a pcap or pcapng file read instead of an interface
	Filter    string  `toml:"filter,omitempty"`      // capture filter, libpcap syntax (pmacct's pcap_filter)
	Snaplen   int     `toml:"snaplen"`               // bytes captured per packet
	Promisc   bool    `toml:"promisc"`               // promiscuous mode (interfaces)
	Direction string  `toml:"direction,omitempty"`   // "", "in", "out" or "inout" (interfaces, where libpcap supports it)
	Speed     float64 `toml:"replay_speed,omitzero"` // files: 0 as fast as possible, 1 at recorded speed
	// BufferSize is libpcap's kernel ring for an interface, in bytes.
	BufferSize int `toml:"-"`
	// Fragments gives the later fragments of a TCP/UDP datagram the ports of
	// its first, as pmacctd does when a plugin aggregates ports or TCP flags
	// (see fragments.go). Off, each fragment is a packet of its own and only
	// a first one has ports. The pipelines decide it, not a key.
	Fragments bool `toml:"-"`
	// ExtSamplingRate says the captured traffic is already sampled 1 in N
	// (pmacctd_ext_sampling_rate): records report it as their sampling rate,
	// for a pipeline to renormalise. 0: not sampled, the rate reported is 1.
	ExtSamplingRate uint32 `toml:"ext_sampling_rate,omitzero"`
}

// Validate reports every setting Open would refuse, naming its key.
func (c Configuration) Validate() error {
	var errs []error
	if (c.Interface == "") == (c.File == "") {
		errs = append(errs, setting.Errorf("interface", "give interface (a device or \"any\") or file (a pcap or pcapng file), one of them"))
	}
	if c.Snaplen < 64 {
		errs = append(errs, setting.Errorf("snaplen", "%d is too small (expected 64 or more)", c.Snaplen))
	}
	if c.Speed < 0 {
		errs = append(errs, setting.Errorf("replay_speed", "%g is negative (expected 0 for as fast as possible, 1 for recorded speed)", c.Speed))
	}
	switch c.Direction {
	case "", "in", "out", "inout":
	default:
		errs = append(errs, setting.Errorf("direction", "unknown direction %q (expected in, out or inout)", c.Direction))
	}
	if c.Filter != "" {
		if _, err := filter.Compile(c.Filter); err != nil {
			errs = append(errs, setting.Key("filter", err))
		}
	}
	return errors.Join(errs...)
}

// DefaultConfiguration captures 512 bytes of each packet, enough for any
// header stack flowdex reads (the IP length comes from the header, not the
// capture), in promiscuous mode. A whole-packet snaplen makes every slot of
// libpcap's ring as large as the interface MTU (64 KiB on lo): the ring then
// holds a few packets and the kernel drops the rest of a burst.
func DefaultConfiguration() Configuration {
	return Configuration{Snaplen: 512, Promisc: true, BufferSize: 16 << 20}
}

// Stats counts what the capture saw. Received, KernelDrops and InterfaceDrops
// are libpcap's statistics (interfaces only).
type Stats struct {
	Packets, Records, NotIP, Truncated    uint64
	Received, KernelDrops, InterfaceDrops uint64
	// With Fragments: later fragments held for their first, held ones whose
	// first never came (packets, bytes), fragments accounted alone because
	// the fragment table was full.
	FragmentsHeld, FragmentsOrphaned, FragmentBytesOrphaned, FragmentsUntracked uint64
	// CustomCut counts custom primitives' values (packet_ptr, len=vlen)
	// longer than a record keeps: cut.
	CustomCut uint64
}

// Capture reads packets into records.
type Capture struct {
	cfg      Configuration
	logger   *slog.Logger
	handle   *pcap.Handle
	first    gopacket.LayerType
	parser   *packet.Parser
	pointers *packet.Pointers // custom primitives read from packets; nil: none
	frags    *fragments       // nil without Fragments

	packets, records, notIP, truncated atomic.Uint64
	customCut                          atomic.Uint64
	received, kernelDrops, ifDrops     atomic.Uint64
}

// Open opens the interface or file and installs the filter.
func Open(cfg Configuration, logger *slog.Logger) (*Capture, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	c := &Capture{cfg: cfg, logger: logger, parser: packet.NewParser(), pointers: packet.NewPointers()}
	c.pointers.Track(c.parser)
	if cfg.Fragments {
		c.frags = newFragments(cfg.ExtSamplingRate == 0)
	}
	var err error
	switch {
	case cfg.File != "":
		if c.handle, err = pcap.OpenOffline(cfg.File); err != nil {
			return nil, fmt.Errorf("pcap: %s: %w", cfg.File, err)
		}
	default:
		if c.handle, err = openLive(cfg); err != nil {
			return nil, fmt.Errorf("pcap: interface %s: %w", cfg.Interface, err)
		}
	}
	if cfg.Filter != "" {
		if err := c.handle.SetBPFFilter(cfg.Filter); err != nil {
			c.handle.Close()
			return nil, fmt.Errorf("pcap: filter %q: %w", cfg.Filter, err)
		}
	}
	switch lt := c.handle.LinkType(); lt {
	case layers.LinkTypeEthernet:
		c.first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		c.first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		c.first = layers.LayerTypeLoopback
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		c.first = layers.LayerTypeIPv4 // raw: the version nibble decides, see record
	case layers.LinkTypeIPv6:
		c.first = layers.LayerTypeIPv6
	default:
		c.handle.Close()
		return nil, fmt.Errorf("pcap: link type %v is not supported (expected Ethernet, Linux cooked, raw IP or BSD loopback)", lt)
	}
	return c, nil
}

func openLive(cfg Configuration) (*pcap.Handle, error) {
	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, err
	}
	defer in.CleanUp()
	if err := in.SetSnapLen(cfg.Snaplen); err != nil {
		return nil, err
	}
	if cfg.BufferSize > 0 {
		if err := in.SetBufferSize(cfg.BufferSize); err != nil {
			return nil, err
		}
	}
	if err := in.SetPromisc(cfg.Promisc); err != nil {
		return nil, err
	}
	if err := in.SetTimeout(100 * time.Millisecond); err != nil { // wakes the reader to see a stop
		return nil, err
	}
	if err := in.SetImmediateMode(true); err != nil {
		return nil, err
	}
	h, err := in.Activate()
	if err != nil {
		return nil, err
	}
	if cfg.Direction != "" {
		d := map[string]pcap.Direction{"in": pcap.DirectionIn, "out": pcap.DirectionOut, "inout": pcap.DirectionInOut}[cfg.Direction]
		if err := h.SetDirection(d); err != nil {
			h.Close()
			return nil, fmt.Errorf("direction %q: %w", cfg.Direction, err)
		}
	}
	return h, nil
}

// Run reads packets until the file ends or ctx is done, calling emit for each
// IP packet (emit's record is reused after it returns). Run is not for
// concurrent use.
func (c *Capture) Run(ctx context.Context, emit func(*flow.Record)) error {
	defer c.handle.Close()
	if c.frags != nil {
		defer c.frags.close()
	}
	var r flow.Record
	pacer := pace.New(0)
	if c.cfg.File != "" {
		pacer = pace.New(c.cfg.Speed)
	}
	defer pacer.Stop()
	for n := 0; ; n++ {
		if n&63 == 0 && ctx.Err() != nil {
			c.updateStats()
			return nil
		}
		data, ci, err := c.handle.ZeroCopyReadPacketData()
		switch {
		case errors.Is(err, pcap.NextErrorTimeoutExpired):
			c.updateStats()
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("pcap: %w", err)
		}
		if !pacer.Wait(ctx, ci.Timestamp) {
			return nil
		}
		c.packets.Add(1)
		if c.record(&r, data, ci) {
			c.records.Add(1)
			emit(&r)
		}
	}
}

// record fills r from one packet, as pmacctd accounts it; false for a packet
// that is not IP, or a fragment held back for its first.
func (c *Capture) record(r *flow.Record, data []byte, ci gopacket.CaptureInfo) bool {
	*r = flow.Record{}
	first := c.first
	if first == layers.LayerTypeIPv4 && len(data) > 0 && data[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	info := c.parser.Parse(r, first, data)
	if info.Result == packet.Truncated {
		c.truncated.Add(1)
	}
	if cut := c.pointers.Fill(r, c.parser); cut > 0 {
		c.customCut.Add(uint64(cut))
	}
	if !r.SrcIP.IsValid() {
		c.notIP.Add(1)
		return false
	}
	if info.Tagged {
		r.VLAN, r.CoS = info.VLAN, info.Priority
	}
	r.TimestampArrival = ci.Timestamp.UnixMicro()
	r.Packets = 1
	r.Bytes = info.IPLength // pmacctd: the IP length, not the frame's
	r.Flows = 0
	r.SamplingRate = max(c.cfg.ExtSamplingRate, 1)
	if c.frags != nil && info.Fragment && (r.Proto == 6 || r.Proto == 17) {
		return c.frags.account(r, info, r.TimestampArrival)
	}
	return true
}

func (c *Capture) updateStats() {
	if c.cfg.Interface == "" {
		return
	}
	if st, err := c.handle.Stats(); err == nil {
		c.received.Store(uint64(st.PacketsReceived))
		c.kernelDrops.Store(uint64(st.PacketsDropped))
		c.ifDrops.Store(uint64(st.PacketsIfDropped))
	}
}

// Stats returns the counters.
func (c *Capture) Stats() Stats {
	st := Stats{Packets: c.packets.Load(), Records: c.records.Load(), NotIP: c.notIP.Load(), Truncated: c.truncated.Load(), CustomCut: c.customCut.Load(),
		Received: c.received.Load(), KernelDrops: c.kernelDrops.Load(), InterfaceDrops: c.ifDrops.Load()}
	if f := c.frags; f != nil {
		st.FragmentsHeld, st.FragmentsOrphaned = f.held.Load(), f.orphanPackets.Load()
		st.FragmentBytesOrphaned, st.FragmentsUntracked = f.orphanBytes.Load(), f.untracked.Load()
	}
	return st
}
