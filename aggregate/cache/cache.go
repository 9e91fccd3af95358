// Package cache is the aggregation cache of one pipeline, pmacct's plugin
// cache: records are filtered, resolved against a networks_file, renormalised,
// reduced to the pipeline's primitives, put in time bins and summed.
//
// Entries are kept in a hash table of its own rather than a Go map keyed by
// flow.Key: the key of an entry is the packed encoding of only the primitives
// the pipeline aggregates on (a few dozen bytes instead of the 256 of a
// flow.Key), stored back to back in one byte slice, so an entry costs about a
// quarter of the memory and a new entry costs no allocation of its own.
package cache

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/networks"
	"github.com/flowdex/flowdex/aggregate/pretag"
)

// Configuration is the setup of one cache. The zero value aggregates
// everything into one total ("none"), without time bins.
type Configuration struct {
	Aggregate flow.Aggregate // from flow.ParseAggregate

	// History is the length of a time bin (pmacct's *_history, read by
	// ParseHistory); the zero History disables bins and stamp_inserted.
	History History
	// HistoryOffset moves the bins earlier (pmacct's history_offset), by
	// less than a bin.
	HistoryOffset time.Duration
	// HistoryRoundoff aligns the first bin (pmacct's *_history_roundoff,
	// checked by CheckRoundoff):
	// "m" to the hour, "h" to midnight, "d" to the 1st of the month, "w" to
	// Sunday, "M" to the 1st of January; letters apply in turn.
	HistoryRoundoff string
	// Location is the time zone of roundoff, as pmacct rounds in local time;
	// nil means time.Local.
	Location *time.Location
	// Base is the time the bins start from, pmacct's start time: its seconds
	// are zeroed, roundoff applied, then it is moved forward by whole bins up
	// to the bin holding Base. Zero means the time New runs.
	Base time.Time
	// Now is the wall clock; nil means time.Now. pmacct moves its current bin
	// with the clock, and the current bin decides two things: the bin of a
	// record without a timestamp, and the boundary quirk (see Add).
	Now func() time.Time

	// Renormalize multiplies packets and bytes (not flows) by the record's
	// sampling rate when it is known (> 0), and reports the rate as 1.
	Renormalize bool
	// TimeNew bins records on their arrival time instead of their flow start
	// (nfacctd_time_new). A record without a flow start (sFlow) is binned on
	// arrival whatever TimeNew says, as sfacctd does.
	TimeNew bool

	// Networks is the networks_file, nil for none.
	Networks *networks.Table
	// NetSource and ASSource are pmacct's nfacctd_net and nfacctd_as: where
	// a side's mask and next hop (peer_dst_ip), and its AS and peer AS, come
	// from (Source); nets are the addresses cut to the masks. The default:
	// SourceFile with Networks, else SourceMask with NetworksMask (nets
	// only), else SourceRecord.
	NetSource, ASSource Source
	// PeerSrcASSource is pmacct's bgp_peer_src_as_type: SourceBGP takes
	// peer_src_as from the route to the source (its path's first AS);
	// otherwise the record's, or ASSource's file.
	PeerSrcASSource Source
	// NetworksMask is pmacct's networks_mask, SourceMask's mask.
	NetworksMask uint8
	// NetworksNoLPM is pmacct's networks_file_no_lpm: with SourceLongest,
	// any entry of the file wins, not only a longer one.
	NetworksNoLPM bool
	// NetworksFilter is pmacct's networks_file_filter: an address no entry
	// of the file matches becomes 0.0.0.0 (::), whatever the sources; with
	// SourceLongest, its mask 0 too.
	NetworksFilter bool
	// NoMaskIfZero is pmacct's networks_no_mask_if_zero: a net whose mask
	// is 0 is the whole address (the mask written stays 0).
	NoMaskIfZero bool
	// Geo, when set, gives the GeoIP primitives (src_host_country...) of
	// the records' addresses, as pmacct's geoipv2_file does.
	Geo Geo
	// Filter, when set, is the aggregate_filter.
	Filter *filter.Filter
	// Tags are the pre_tag_filter, pre_tag2_filter and pre_tag_label_filter,
	// on the tags the input's pre_tag_map gave the record; a record they
	// refuse is counted as the aggregate_filter's are.
	Tags pretag.Filters
	// PostTag and PostTag2 are pmacct's post_tag and post_tag2: the tag and
	// tag2 of every record, after the filters (0: the record's)
	PostTag, PostTag2 uint64

	// TimestampsSecs cuts timestamp_start, _end, _arrival and _export to
	// whole seconds before aggregating (pmacct's timestamps_secs, which its
	// handlers apply as they fill a record), so that records a second apart
	// at most share an aggregate.
	TimestampsSecs bool

	// SamplingRate above 1 samples the records that pass the filter, 1 in
	// SamplingRate on average, as pmacctd's sampling_rate: the gap to the
	// next kept record is drawn uniformly from 1 to 2*SamplingRate-1. Kept
	// records report the rate (and are renormalised by it with Renormalize).
	SamplingRate uint32
	// SamplingSeed seeds the draws; 0 picks a random seed.
	SamplingSeed uint64
	// MaxEntries is pmacct's print_cache_entries: when the cache holds that
	// many aggregates, Full signals, for a flush at once (pmacct's urgent
	// purge); records are kept meanwhile. 0: no bound.
	MaxEntries int
}

// History is a time bin's length: a duration, or calendar months.
type History struct {
	Length time.Duration // whole seconds
	Months int           // months, when Length is 0
}

// Enabled reports whether there are bins.
func (h History) Enabled() bool { return h.Length > 0 || h.Months > 0 }

// ParseHistory reads pmacct's history bin length: a number followed by s, m,
// h, d, w or M (calendar months); "" means no bins.
func ParseHistory(s string) (History, error) {
	if s == "" {
		return History{}, nil
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'M': 0}
	unit, ok := units[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n < 1 {
		return History{}, fmt.Errorf("%q is not a bin length (expected a number followed by s, m, h, d, w or M, e.g. \"1m\", \"5m\" or \"1M\")", s)
	}
	if unit == 0 {
		return History{Months: n}, nil
	}
	return History{Length: time.Duration(n) * unit}, nil
}

// CheckRoundoff reports a history roundoff New cannot apply: letters other
// than pmacct's m, h, d, w and M, which apply in turn ("mh").
func CheckRoundoff(letters string) error {
	for _, l := range letters {
		if !strings.ContainsRune("mhdwM", l) {
			return fmt.Errorf("unknown roundoff %q (expected m, h, d, w or M, or several in turn such as \"mh\")", letters)
		}
	}
	return nil
}

// Entry is one aggregate.
type Entry struct {
	flow.Key        // only the aggregated primitives are set
	Bin      int64  // stamp_inserted: bin start, Unix seconds; 0 without history
	TCPFlags uint8  // OR of the records' flags
	Events   bool   // every record was an event (flow.Record.Event)
	Packets  uint64 // sums, renormalised when configured
	Bytes    uint64
	Flows    uint64
}

// Source is where nets, masks and AS numbers come from (pmacct's
// nfacctd_net, nfacctd_as values).
type Source uint8

const (
	SourceDefault Source = iota // see Configuration.NetSource
	SourceRecord                // the record's: NetFlow's, sFlow's ("netflow", "sflow")
	SourceFile                  // the networks_file's longest match; none: 0, and no next hop
	SourceMask                  // NetworksMask (nets and masks only)
	SourceLongest               // the file's when its match is longer than the record's mask ("longest", "fallback")
	SourceBGP                   // the BGP routes' (flow.BGPAS, the input's lookups): AS numbers, masks and the next hop
)

// ParseSource reads pmacct's name of a source.
func ParseSource(s string) (Source, error) {
	switch strings.ToLower(s) {
	case "netflow", "sflow":
		return SourceRecord, nil
	case "file":
		return SourceFile, nil
	case "mask":
		return SourceMask, nil
	case "longest", "fallback":
		return SourceLongest, nil
	case "bgp":
		return SourceBGP, nil
	case "bmp", "igp":
		return 0, fmt.Errorf("%q: pmacct's routing daemons, which flowdex does not have yet (expected netflow, sflow, file, mask, longest or bgp)", s)
	}
	return 0, fmt.Errorf("%q: expected netflow, sflow, file, mask, longest (fallback) or bgp", s)
}

// Geo looks up the GeoIP primitives of addresses: aggregate/enrich's
// Enricher, with its geoip_database.
type Geo interface {
	Locate(a netip.Addr) flow.Location
	// Generation changes when what Locate says may have changed (a reload).
	Generation() uint64
}

// Stats counts what went through a cache.
type Stats struct {
	Records  uint64 // records given to Add
	Filtered uint64 // records the filter or the tag filters rejected
	Sampled  uint64 // records passed over by sampling
	Entries  int    // entries in the cache now
	Flushes  uint64 // calls to Flush
	Full     uint64 // times the cache reached MaxEntries
	Flushed  uint64 // entries handed out by Flush
}

// Cache aggregates records. Add and Flush are safe for concurrent use.
type Cache struct {
	codec             flow.KeyCodec // packs the key primitives
	sum               flow.Sum
	filter            *filter.Filter
	tags              *pretag.Filters // nil: none
	nets              *networks.Table
	postTag, postTag2 uint64
	netSrc, asSrc     Source
	netMask           uint8
	noLPM, netFilter  bool
	noMaskIfZero      bool
	peerSrcBGP        bool // PeerSrcASSource is SourceBGP
	renorm            bool
	secs              bool // TimestampsSecs

	// Which derived fields Add must compute.
	resolveSrc, resolveDst bool // nets, masks, AS of a side aggregated (resolve)
	custom                 bool // the aggregate has custom primitives (Key.Custom)
	geo                    Geo
	geoSrc, geoDst         bool // the aggregate has GeoIP primitives of the source, of the destination

	// Time bins; slot 0 means no history. Month bins: months a bin from
	// monthBase's month, offset seconds earlier.
	slot      int64
	offset    int64
	months    int
	monthBase time.Time
	base      int64 // first bin start, Unix seconds
	now       func() time.Time
	timeNew   bool

	seed maphash.Seed

	mu  sync.Mutex // guards cur
	cur *table

	flushMu sync.Mutex // one Flush at a time; guards spare
	spare   *table

	sampling uint32
	sampleMu sync.Mutex // guards skip and rng
	skip     uint32     // records to let go before the next kept one
	rng      *rand.Rand

	records, filtered, sampledOut, flushes, flushed atomic.Uint64
	maxEntries                                      int
	full                                            chan struct{} // MaxEntries reached; buffered 1
	fullCount                                       atomic.Uint64
}

// New returns an empty cache. Settings ParseHistory and CheckRoundoff would
// refuse are tolerated: unknown roundoff letters are ignored, as pmacct
// does, and History is rounded up to whole seconds.
func New(cfg Configuration) *Cache {
	c := &Cache{
		sum:     cfg.Aggregate.Sum,
		filter:  cfg.Filter,
		tags:    tagFilters(cfg.Tags),
		nets:    cfg.Networks,
		renorm:  cfg.Renormalize,
		secs:    cfg.TimestampsSecs,
		now:     cfg.Now,
		timeNew: cfg.TimeNew,
		seed:    maphash.MakeSeed(),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.SamplingRate > 1 {
		seed := cfg.SamplingSeed
		if seed == 0 {
			seed = rand.Uint64()
		}
		c.sampling, c.rng = cfg.SamplingRate, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	set := cfg.Aggregate.Set
	c.codec = flow.NewKeyCodec(set)
	c.custom = set.HasCustom()
	if c.geo = cfg.Geo; c.geo != nil {
		c.geoSrc = set.Has(flow.SrcHostCountry) || set.Has(flow.SrcHostPocode) || set.Has(flow.SrcHostCoords)
		c.geoDst = set.Has(flow.DstHostCountry) || set.Has(flow.DstHostPocode) || set.Has(flow.DstHostCoords)
	}
	has := func(ps ...flow.Primitive) bool {
		for _, p := range ps {
			if set.Has(p) {
				return true
			}
		}
		return false
	}
	c.postTag, c.postTag2 = cfg.PostTag, cfg.PostTag2
	c.noMaskIfZero = cfg.NoMaskIfZero
	c.netSrc, c.asSrc, c.netMask = cfg.NetSource, cfg.ASSource, cfg.NetworksMask
	c.peerSrcBGP = cfg.PeerSrcASSource == SourceBGP
	c.noLPM, c.netFilter = cfg.NetworksNoLPM, cfg.NetworksFilter && c.nets != nil
	if c.netSrc == SourceDefault {
		switch {
		case c.nets != nil:
			c.netSrc = SourceFile
		case c.netMask > 0:
			c.netSrc = SourceMask
		default:
			c.netSrc = SourceRecord
		}
	}
	if c.asSrc == SourceDefault {
		c.asSrc = SourceRecord
		if c.nets != nil {
			c.asSrc = SourceFile
		}
	}
	sumNetAS := c.sum == flow.SumNet || c.sum == flow.SumAS
	c.resolveSrc = sumNetAS || has(flow.SrcNet, flow.SrcMask, flow.SrcAS, flow.PeerSrcAS) || c.netFilter && (c.sum == flow.SumHost || has(flow.SrcHost))
	c.resolveDst = sumNetAS || has(flow.DstNet, flow.DstMask, flow.DstAS, flow.PeerDstAS, flow.PeerDstIP) || c.netFilter && (c.sum == flow.SumHost || has(flow.DstHost))
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	start := cfg.Base
	if start.IsZero() {
		start = c.now()
	}
	c.offset = int64(cfg.HistoryOffset / time.Second)
	switch h := cfg.History; {
	case h.Months > 0:
		// from the 1st of the month, whatever the roundoff, as pmacct
		y, m, _ := start.In(loc).Date()
		c.months, c.slot = h.Months, 1
		c.monthBase = time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case h.Length > 0:
		c.slot = int64((h.Length + time.Second - 1) / time.Second)
		c.base = advance(roundoff(start, cfg.HistoryRoundoff, loc)-c.offset, start.Unix(), c.slot)
	}
	c.cur = newTable(c.seed)
	c.spare = newTable(c.seed)
	c.maxEntries, c.full = cfg.MaxEntries, make(chan struct{}, 1)
	return c
}

// Full is signalled when the cache reaches MaxEntries: the caller flushes.
func (c *Cache) Full() <-chan struct{} { return c.full }

// checkFull signals Full when the table reached MaxEntries; called with
// c.mu held, after an add.
func (c *Cache) checkFull() {
	if c.maxEntries > 0 && c.cur.n() == c.maxEntries {
		c.fullCount.Add(1)
		select {
		case c.full <- struct{}{}:
		default: // signalled already
		}
	}
}

// roundoff zeroes the seconds of t and applies pmacct's roundoff letters in
// loc, as roundoff_time in pmacct's src/util.c.
func roundoff(t time.Time, letters string, loc *time.Location) int64 {
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, _ := t.Clock()
	wd := int(t.Weekday())
	for _, l := range letters {
		switch l {
		case 'm':
			mi = 0
		case 'h':
			h, mi = 0, 0
		case 'd':
			d, h, mi = 1, 0, 0
		case 'w':
			// Back to Sunday; like pmacct, after 'd' this uses the original
			// weekday.
			d, h, mi = d-wd, 0, 0
			wd = 0
		case 'M':
			mo, d, h, mi = time.January, 1, 0, 0
		}
	}
	return time.Date(y, mo, d, h, mi, 0, 0, loc).Unix()
}

// advance moves a bin start forward by whole bins while the bin ends before
// now, as pmacct does at start and at every clock update: the result is the
// bin holding now, or the one before when now is exactly on a boundary.
func advance(start, now, slot int64) int64 {
	if now-start <= slot {
		return start
	}
	return start + (now-start-1)/slot*slot
}

// bin returns the bin start of a record's timestamp, pmacct's
// P_eval_historical_acct.
func (c *Cache) bin(r *flow.Record) int64 {
	us := r.TimestampStart
	if c.timeNew || us == 0 {
		// sFlow has no flow time: sfacctd bins samples on arrival
		us = r.TimestampArrival
	}
	s := us / 1e6
	if us < 0 && us%1e6 != 0 {
		s--
	}
	if c.months > 0 {
		if s == 0 {
			s = c.now().Unix()
		}
		return c.monthBin(s)
	}
	if s == 0 {
		// No timestamp: pmacct leaves the record in the current bin.
		return advance(c.base, c.now().Unix(), c.slot)
	}
	off := (s - c.base) % c.slot
	if off < 0 {
		off += c.slot
	}
	b := s - off
	// pmacct's quirk: a timestamp exactly on a boundary, older than the
	// current bin, goes one bin earlier (its formula for the past yields a
	// full period where it should yield none).
	if off == 0 && s < advance(c.base, c.now().Unix(), c.slot) {
		b -= c.slot
	}
	return b
}

// monthBin returns the start of the month bin of s, Unix seconds: bins of
// c.months calendar months from monthBase's, offset earlier. A time exactly
// on a bin's start belongs to the bin before, as pmacct 1.7.7 bins it (it
// hangs on times before its first bin; flowdex bins them).
func (c *Cache) monthBin(s int64) int64 {
	t := time.Unix(s+c.offset, 0).In(c.monthBase.Location())
	by, bm, _ := c.monthBase.Date()
	y, m, _ := t.Date()
	k := (y-by)*12 + int(m-bm)
	k -= (k%c.months + c.months) % c.months // down to a bin's first month
	start := c.monthBase.AddDate(0, k, 0)
	if t.Equal(start) {
		start = start.AddDate(0, -c.months, 0)
	}
	return start.Unix() - c.offset
}

func tagFilters(f pretag.Filters) *pretag.Filters {
	if f.Empty() {
		return nil
	}
	return &f
}

// Add aggregates one record; the record is not kept.
//
// Order, as in pmacct: the filter sees the record as it came; then nets,
// masks and ASes are resolved (networks_file, or the record's masks), packets
// and bytes renormalised, the key reduced to the aggregated primitives and
// the bin chosen from the flow start (or arrival with TimeNew). A timestamp
// exactly on a bin boundary that is older than the current bin falls in the
// previous bin, a quirk of pmacct's formula copied on purpose; a record
// without a timestamp goes to the current bin.
//
// Everything up to the table update runs outside the lock; the lock covers
// one hash-table probe and update (about 10 ns of lock and unlock when
// uncontended; writers on every core share one table).
func (c *Cache) Add(r *flow.Record) {
	var s Scratch
	c.AddWith(r, &s)
}

// Scratch is the working space of AddWith: a caller adding from one
// goroutine keeps one, so that each record does not clear a fresh one
// (about 1.3 KB, 10 ns and more a record).
type Scratch struct {
	// geo remembers the last addresses located, of every cache the
	// scratch serves: a database lookup costs a microsecond, and flows
	// repeat addresses
	geo map[geoKey]geoMemo

	k    flow.Key
	buf  [maxKey]byte
	buf2 [maxKey]byte
}

// AddWith is Add with the caller's Scratch, which it uses alone meanwhile.
func (c *Cache) AddWith(r *flow.Record, s *Scratch) {
	c.records.Add(1)
	if c.filter != nil && !c.filter.Match(r) || c.tags != nil && !c.tags.Match(r) {
		c.filtered.Add(1)
		return
	}
	if c.sampling > 0 && !c.sample() {
		c.sampledOut.Add(1)
		return
	}
	k := &s.k
	k.Fixed = r.Fixed
	if c.custom {
		k.Custom = r.Custom
	}
	if c.sampling > 0 {
		k.SamplingRate = c.sampling
	}
	c.resolve(k, &r.BGPAS)
	if c.postTag != 0 {
		k.Tag = c.postTag
	}
	if c.postTag2 != 0 {
		k.Tag2 = c.postTag2
	}
	if c.geoSrc {
		l := c.locate(s, k.SrcIP)
		k.SrcCountry, k.SrcPocode, k.SrcCoords = l.Country, l.Pocode, l.Coords
	}
	if c.geoDst {
		l := c.locate(s, k.DstIP)
		k.DstCountry, k.DstPocode, k.DstCoords = l.Country, l.Pocode, l.Coords
	}
	if c.secs {
		k.TimestampStart, k.TimestampEnd = wholeSeconds(k.TimestampStart), wholeSeconds(k.TimestampEnd)
		k.TimestampArrival, k.TimestampExport = wholeSeconds(k.TimestampArrival), wholeSeconds(k.TimestampExport)
	}
	packets, bytes := r.Packets, r.Bytes
	if c.renorm && k.SamplingRate > 0 {
		m := uint64(k.SamplingRate)
		if r.Renorm > 0 {
			m = uint64(r.Renorm)
		}
		packets *= m
		bytes *= m
		k.SamplingRate = 1
	}
	var bin int64
	if c.slot > 0 {
		bin = c.bin(r)
	}
	flags := uint16(r.TCPFlags)
	if !r.Event {
		flags |= flagTraffic
	}
	key := c.encode(s.buf[:0], k, bin)
	h := maphash.Bytes(c.seed, key)
	if c.sum == flow.SumNone {
		c.mu.Lock()
		c.cur.add(key, h, packets, bytes, r.Flows, flags)
		c.checkFull()
		c.mu.Unlock()
		return
	}
	// sum_*: counted once under the source value, once under the destination
	// value moved into the source field. pmacct (1.7.7, checked with pmacctd)
	// gets sum_net wrong, counting both under the source net; flowdex does
	// for sum_net what pmacct does for sum_host.
	switch c.sum {
	case flow.SumHost:
		k.SrcIP = k.DstIP
	case flow.SumNet:
		k.SrcNet = k.DstNet
	case flow.SumAS:
		k.SrcAS = k.DstAS
	case flow.SumPort:
		k.SrcPort = k.DstPort
	case flow.SumMAC:
		k.SrcMAC = k.DstMAC
	}
	key2 := c.encode(s.buf2[:0], k, bin)
	h2 := maphash.Bytes(c.seed, key2)
	c.mu.Lock()
	c.cur.add(key, h, packets, bytes, r.Flows, flags)
	c.checkFull()
	c.cur.add(key2, h2, packets, bytes, r.Flows, flags)
	c.checkFull()
	c.mu.Unlock()
}

type geoKey struct {
	c *Cache
	a netip.Addr
}

type geoMemo struct {
	gen uint64 // Geo.Generation when located
	l   flow.Location
}

// geoMemos bounds a scratch's memory of locations (about 70 bytes each).
const geoMemos = 16384

// locate is c.geo.Locate(a), remembered in s.
func (c *Cache) locate(s *Scratch, a netip.Addr) flow.Location {
	gen := c.geo.Generation()
	if m, ok := s.geo[geoKey{c, a}]; ok && m.gen == gen {
		return m.l
	}
	if s.geo == nil || len(s.geo) >= geoMemos {
		s.geo = make(map[geoKey]geoMemo)
	}
	l := c.geo.Locate(a)
	s.geo[geoKey{c, a}] = geoMemo{gen, l}
	return l
}

// wholeSeconds cuts Unix microseconds down to the second (before 1970 too).
func wholeSeconds(us int64) int64 {
	r := us % 1e6
	if r < 0 {
		r += 1e6
	}
	return us - r
}

// resolve fills nets, masks, ASes and next hop as configured.
func (c *Cache) resolve(k *flow.Key, bgp *flow.BGPAS) {
	if c.resolveSrc {
		c.resolveSide(&k.SrcIP, &k.SrcNet, &k.SrcMask, &k.SrcAS, &k.PeerSrcAS, nil, bgp.BGPSrcMask, netip.Addr{})
		if c.asSrc == SourceBGP {
			k.SrcAS = bgp.BGPSrcAS // the peer AS stays the record's unless PeerSrcASSource, as nfacctd's
		}
		if c.peerSrcBGP {
			k.PeerSrcAS = bgp.BGPPeerSrcAS
		}
	}
	if c.resolveDst {
		c.resolveSide(&k.DstIP, &k.DstNet, &k.DstMask, &k.DstAS, &k.PeerDstAS, &k.PeerDstIP, bgp.BGPDstMask, bgp.BGPNextHop)
		if c.asSrc == SourceBGP {
			k.DstAS, k.PeerDstAS = bgp.BGPDstAS, bgp.BGPPeerDstAS
		}
	}
}

// resolveSide sets one side's mask, next hop (the destination's; nh nil
// for the source), AS and peer AS by their sources, as pmacct 1.7.7 does
// (net_aggr.c, evaluate_lm_method), and the net: the host cut to the mask.
func (c *Cache) resolveSide(host, net *netip.Addr, mask *uint8, as, peerAS *uint32, nh *netip.Addr, bgpMask uint8, bgpNextHop netip.Addr) {
	var e networks.Entry
	var matched bool
	f := 0 // the file's prefix length, 0 without a match
	if c.nets != nil && (c.netSrc != SourceRecord || c.asSrc == SourceFile || c.asSrc == SourceLongest) || c.netFilter {
		if e, matched = c.nets.Lookup(*host); matched {
			f = e.Prefix.Bits()
		}
	}
	// longest: the file wins a mask when its prefix is longer (any match,
	// without longest-prefix match), the AS and next hop when it is at
	// least as long as the mask chosen
	wins := func(m int) bool {
		if c.noLPM {
			return f > 0
		}
		return f >= m
	}
	r := int(*mask)
	m := r
	switch c.netSrc {
	case SourceBGP:
		m = int(bgpMask)
		if nh != nil {
			*nh = bgpNextHop
		}
	case SourceFile:
		m = f
		if nh != nil {
			*nh = e.NextHop
		}
	case SourceMask:
		m = int(c.netMask)
		if nh != nil {
			*nh = netip.Addr{} // nfacctd keeps no next hop in this mode
		}
	case SourceLongest:
		if c.noLPM && f > 0 || !c.noLPM && f > r {
			m = f
		}
		if nh != nil && wins(m) {
			*nh = e.NextHop
		}
	}
	if c.netFilter && !matched {
		*host = maskAddr(*host, 0)
		if c.netSrc == SourceLongest {
			m = 0
			if nh != nil {
				*nh = netip.Addr{}
			}
		}
	}
	*mask = uint8(m)
	switch am := r; c.asSrc {
	case SourceFile:
		*as, *peerAS = e.AS, e.PeerAS
	case SourceLongest:
		if c.netSrc == SourceLongest {
			am = m
		}
		if wins(am) || c.netFilter && !matched {
			*as, *peerAS = e.AS, e.PeerAS
		}
	}
	if m == 0 && c.noMaskIfZero {
		m = 128 // the whole address, of either family
	}
	*net = maskAddr(*host, uint8(m))
}

// maskAddr keeps the first bits of a. Like pmacct, a mask of 0 gives 0.0.0.0
// or :: (not an unknown net), and a mask beyond the address length keeps it
// whole.
func maskAddr(a netip.Addr, bits uint8) netip.Addr {
	if !a.IsValid() {
		return a
	}
	n := int(bits)
	if n > a.BitLen() {
		n = a.BitLen()
	}
	p, _ := a.Prefix(n)
	return p.Addr()
}

// BGPAS reports whether the cache takes AS numbers from BGP routes
// (flow.BGPAS), which its input must then look up.
func (c *Cache) BGPAS() bool { return c.asSrc == SourceBGP || c.peerSrcBGP }

// BGPNet reports whether the cache takes masks and the next hop from BGP
// routes (flow.BGPAS), which its input must then look up with their
// prefixes.
func (c *Cache) BGPNet() bool { return c.netSrc == SourceBGP }

// Flush hands every entry to emit, in the order the entries were first seen,
// and empties the cache. emit must not keep the *Entry, which is reused.
// Records added during a Flush go to the next one.
func (c *Cache) Flush(emit func(*Entry)) {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	t := c.cur
	c.cur = c.spare
	c.mu.Unlock()

	var e Entry
	for i := range t.n() {
		e = Entry{}
		bin := c.decode(t.key(i), &e.Key)
		e.Bin = bin
		ct := &t.ctrs[i]
		e.Packets, e.Bytes, e.Flows = ct.packets, ct.bytes, ct.flows
		e.TCPFlags, e.Events = uint8(t.flags[i]), t.flags[i]&flagTraffic == 0
		emit(&e)
	}
	c.flushes.Add(1)
	c.flushed.Add(uint64(t.n()))
	t.reset()
	c.spare = t
}

// sample reports whether the next record is kept.
func (c *Cache) sample() bool {
	c.sampleMu.Lock()
	defer c.sampleMu.Unlock()
	if c.skip == 0 {
		c.skip = 1 + c.rng.Uint32N(2*c.sampling-1)
	}
	c.skip--
	return c.skip == 0
}

// Stats returns the counters of the cache.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n := c.cur.n()
	c.mu.Unlock()
	return Stats{
		Records:  c.records.Load(),
		Filtered: c.filtered.Load(),
		Sampled:  c.sampledOut.Load(),
		Entries:  n,
		Flushes:  c.flushes.Load(),
		Full:     c.fullCount.Load(),
		Flushed:  c.flushed.Load(),
	}
}
