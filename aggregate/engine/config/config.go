// Package config reads flowdex's configuration: a TOML file whose tables are
// the configurations of the components that run them, or a
// pmacct-to-elasticsearch plugin file (p2es.go) turned into one.
//
//   - [[input]], by type: pmacct (collector/pmacct), netflow and sflow
//     (collector/datagram's sockets or a replayed capture, with
//     collector/netflow's or collector/sflow's decoder), pcap
//     (collector/pcap);
//   - [[pipeline]]: aggregation (aggregate/cache, aggregate/flow's formats),
//     enrichment (aggregate/enrich) and p2es transformations;
//   - [output.NAME], by type: elasticsearch (sink/elasticsearch), kafka
//     (sink/kafka) or print (sink/file);
//   - [log] and [http], the engine's own.
//
// Each component's DefaultConfiguration gives its defaults and its Validate
// its rules; this package decodes the tables straight into them, derives what
// depends on the rest of the file (which pipelines an input feeds, the web
// view's output), checks the cross references, and reports every mistake of
// the file at its line and column with what was expected.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/enrich"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/pretag"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/bgp"
	"github.com/flowdex/flowdex/collector/bmp"
	"github.com/flowdex/flowdex/collector/datagram"
	kafkainput "github.com/flowdex/flowdex/collector/kafka"
	"github.com/flowdex/flowdex/collector/netflow"
	"github.com/flowdex/flowdex/collector/pcap"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/collector/sflow"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
	"github.com/flowdex/flowdex/sink/file"
	kafkaoutput "github.com/flowdex/flowdex/sink/kafka"
)

// Config is the whole flowdex configuration.
type Config struct {
	// AggregatePrimitives is pmacct's aggregate_primitives file: the custom
	// primitives (aggregate/custom) of every pipeline and input. Load
	// defines them for the process (flow.DefineCustom), since the
	// pipelines' aggregate lists name them.
	AggregatePrimitives string `toml:"aggregate_primitives,omitempty"`

	Log       Log               `toml:"log"`
	HTTP      HTTP              `toml:"http"`
	BGP       *BGP              `toml:"bgp"` // nil: no [bgp]
	BMP       *BMP              `toml:"bmp"` // nil: no [bmp]
	Inputs    []Input           `toml:"input"`
	Pipelines []Pipeline        `toml:"pipeline"`
	Outputs   map[string]Output `toml:"output"`

	// File is where the configuration came from ("" for the built-in default).
	File string `toml:"-"`
	// where finds the line and column of a key, for errors found after
	// loading (the engine's, building the components)
	where locator
}

// BGP is pmacct's bgp_daemon: the BGP listener routers peer with, their
// routes kept per peer for flows to be looked up in (README, "BGP and
// BMP").
type BGP struct {
	Listen   string           `toml:"listen"`              // host:port, default 0.0.0.0:179
	ASN      uint32           `toml:"asn"`                 // flowdex's AS
	RouterID string           `toml:"router_id,omitempty"` // "": the listening address when IPv4, else 0.0.0.1
	HoldTime setting.Duration `toml:"hold_time"`           // proposed in OPEN; 0: no keepalives
	Peers    []BGPPeer        `toml:"peer"`                // who may peer
	RouteTexts
}

// RouteTexts say what the texts of routes learnt over BGP or BMP keep:
// pmacct's bgp_stdcomm_pattern, bgp_extcomm_pattern, bgp_lrgcomm_pattern
// (comma-separated there) and bgp_aspath_radius.
type RouteTexts struct {
	StdCommPatterns []string `toml:"std_comm_patterns,omitempty"`
	ExtCommPatterns []string `toml:"ext_comm_patterns,omitempty"`
	LrgCommPatterns []string `toml:"lrg_comm_patterns,omitempty"`
	ASPathRadius    int      `toml:"as_path_radius,omitzero"`
}

func (t RouteTexts) texts() routes.Texts {
	return routes.Texts{StdComm: t.StdCommPatterns, ExtComm: t.ExtCommPatterns, LrgComm: t.LrgCommPatterns, ASPathRadius: t.ASPathRadius}
}

// BGPPeer is a [[bgp.peer]]: addresses that may open a session.
type BGPPeer struct {
	Prefix      setting.Prefix `toml:"prefix"`
	ASN         uint32         `toml:"asn,omitempty"`          // 0: any
	MaxPrefixes int            `toml:"max_prefixes,omitempty"` // 0: no bound
	Password    string         `toml:"password,omitempty"`     // TCP MD5 (RFC 2385), pmacct's bgp_daemon_md5_file; Linux
}

func newBGP() *BGP {
	d := bgp.DefaultConfiguration()
	return &BGP{Listen: d.Listen, HoldTime: setting.Duration{Duration: d.HoldTime}}
}

// Configuration is the listener's configuration; its error names the key.
func (b *BGP) Configuration() (bgp.Configuration, error) {
	c := bgp.Configuration{Listen: b.Listen, ASN: b.ASN, HoldTime: b.HoldTime.Duration, Texts: b.texts()}
	if b.RouterID != "" {
		a, err := netip.ParseAddr(b.RouterID)
		if err != nil || !a.Is4() {
			return c, setting.Key("router_id", fmt.Errorf("%q is not an IPv4 address (expected a BGP identifier such as \"192.0.2.1\")", b.RouterID))
		}
		c.RouterID = a
	}
	for _, p := range b.Peers {
		c.Peers = append(c.Peers, bgp.PeerConfiguration{Prefix: p.Prefix.Prefix, ASN: p.ASN, MaxPrefixes: p.MaxPrefixes, Password: p.Password})
	}
	return c, c.Validate()
}

// BMP is pmacct's bmp_daemon: the BMP collector routers connect to, each
// router's monitored peers' routes merged in a view its flows are looked
// up in (README, "BGP and BMP").
type BMP struct {
	Listen  string           `toml:"listen"`  // host:port, default 0.0.0.0:1790
	Routers []setting.Prefix `toml:"routers"` // who may connect
	Policy  string           `toml:"policy"`  // "post" (default) or "pre": the Adj-RIB-In taken
	RouteTexts
}

func newBMP() *BMP {
	d := bmp.DefaultConfiguration()
	return &BMP{Listen: d.Listen, Policy: d.Policy}
}

// Configuration is the collector's configuration; its error names the key.
func (b *BMP) Configuration() (bmp.Configuration, error) {
	c := bmp.Configuration{Listen: b.Listen, Policy: b.Policy, Texts: b.texts()}
	for _, p := range b.Routers {
		c.Routers = append(c.Routers, p.Prefix)
	}
	return c, c.Validate()
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`          // debug, info, warn, error
	Format string `toml:"format"`         // text or json
	File   string `toml:"file,omitempty"` // "" or "-" for standard error
}

// HTTP is flowdex's own HTTP server: /metrics (Prometheus), /healthz, /readyz
// and the web view.
type HTTP struct {
	// Listen is the address to serve on; "" (no [http] table) serves nothing.
	// An [http] table without it listens on DefaultHTTPListen: loopback only,
	// since the metrics name exporters and the web view shows traffic.
	Listen string `toml:"listen,omitempty"`
	// Web serves the web view at / (default: on when Listen is a loopback
	// address, off otherwise): traffic and top lists from the Elasticsearch
	// output WebOutput (default: the first by name whose indices it can
	// search).
	Web       *bool  `toml:"web,omitempty"`
	WebOutput string `toml:"web_output,omitempty"`
	// AllowedHosts are the names, besides localhost, Listen's host and IP
	// addresses, that requests may give in their Host header; others get 421,
	// so that a page of another site that a browser on this host opens
	// cannot read the server through a name rebound to it (DNS rebinding).
	// On a wildcard Listen ("0.0.0.0", "[::]", ""), empty accepts any name:
	// the operator serves every network already. "*" accepts any name.
	AllowedHosts []string `toml:"allowed_hosts"`
}

// DefaultHTTPListen is where an [http] table without listen serves.
const DefaultHTTPListen = "127.0.0.1:8090"

// Input is one [[input]]: a *PmacctInput, *KafkaInput, *NetFlowInput,
// *SFlowInput or *PcapInput.
type Input interface {
	Common() *InputCommon
}

// InputCommon is what every input has.
type InputCommon struct {
	Name string `toml:"name"`
	Type string `toml:"type"`
}

// Common returns the name and type.
func (c *InputCommon) Common() *InputCommon { return c }

// FlowInput is an input of flows for aggregating pipelines: netflow, sflow,
// pcap.
type FlowInput interface {
	Input
	Targets() *Flows
}

// Flows is what flow inputs share: the pipelines they feed, and pmacct's
// pre_tag_map, which tags each record before the pipelines see it (as
// nfacctd's core does, once for all its plugins).
type Flows struct {
	Pipelines []string `toml:"pipelines"`             // default: every pipeline no pmacct input uses
	PreTagMap string   `toml:"pre_tag_map,omitempty"` // reloaded on SIGHUP
	// BGPAgentMap is pmacct's bgp_agent_map: the BGP peer of each exporter
	// that does not peer from its export address (aggregate/routes)
	BGPAgentMap string `toml:"bgp_agent_map,omitempty"`
}

// Targets returns the pipelines.
func (f *Flows) Targets() *Flows { return f }

// PretagOptions are how in's pre_tag_map is read: as pmacctd's for a
// capture, sfacctd's for sFlow, nfacctd's for NetFlow.
func PretagOptions(in FlowInput) pretag.Options {
	switch in.(type) {
	case *PcapInput:
		return pretag.Options{Capture: true}
	case *SFlowInput:
		return pretag.Options{SFlow: true}
	}
	return pretag.Options{}
}

// PmacctInput reads pmacct's output: type = "pmacct".
type PmacctInput struct {
	InputCommon
	pmacct.Configuration
	Pipeline string `toml:"pipeline"` // default: the first pipeline
}

// KafkaInput reads pmacct JSON messages from Kafka topics as a member of a
// consumer group: type = "kafka".
type KafkaInput struct {
	InputCommon
	kafkainput.Configuration
	// Timezone reads pmacct's timestamps without an offset, as a pmacct
	// input's does.
	Timezone setting.Location `toml:"timezone"`
	// DeadLetterFile gets every message that is not pmacct JSON, one JSON
	// line each with its topic, partition and offset; "" logs and counts
	// them only.
	DeadLetterFile string `toml:"dead_letter_file,omitempty"`
	Pipeline       string `toml:"pipeline"` // default: the first pipeline
}

// RecordPipeline is the pipeline an input of pmacct records feeds (pmacct,
// kafka), nil for the others.
func RecordPipeline(in Input) *string {
	switch in := in.(type) {
	case *PmacctInput:
		return &in.Pipeline
	case *KafkaInput:
		return &in.Pipeline
	}
	return nil
}

// Receive is how a NetFlow or sFlow input gets its datagrams: from its
// sockets, or from a capture of them (nfacctd -I), and from which exporters.
type Receive struct {
	datagram.Configuration
	// Replay is a pcap or pcapng of exported datagrams read instead of
	// sockets; ReplaySpeed 0 reads as fast as possible, 1 at recorded speed.
	// ReplayDelay waits before the first datagram, as nfacctd's
	// pcap_savefile_delay: time for BGP peers to send their tables.
	Replay      string           `toml:"replay,omitempty"`
	ReplaySpeed float64          `toml:"replay_speed,omitzero"`
	ReplayDelay setting.Duration `toml:"replay_delay,omitzero"`
	// Exporters is an allow-list of addresses and prefixes: datagrams from
	// others are dropped before decoding, and counted.
	Exporters []setting.Prefix `toml:"exporters,omitempty"`
}

// ReceiveOf gives the receive settings of an input that receives exported
// datagrams (netflow, sflow), nil for the others.
func ReceiveOf(in Input) *Receive {
	switch in := in.(type) {
	case *NetFlowInput:
		return &in.Receive
	case *SFlowInput:
		return &in.Receive
	}
	return nil
}

// NetFlowInput receives NetFlow v5/v9 and IPFIX: type = "netflow".
type NetFlowInput struct {
	InputCommon
	Receive
	netflow.Configuration
	Flows
}

// SFlowInput receives sFlow v5: type = "sflow".
type SFlowInput struct {
	InputCommon
	Receive
	sflow.Configuration
	Flows
}

// PcapInput captures packets as pmacctd does: type = "pcap".
type PcapInput struct {
	InputCommon
	pcap.Configuration
	Flows
}

// The ports of pmacct's collectors, where flow inputs listen by default.
const (
	NetFlowPort = 2100 // nfacctd
	SFlowPort   = 6343 // sfacctd
)

// newInput returns an input of type typ with every default, nil for an
// unknown type.
func newInput(typ string) Input {
	flowListen := func(port int) datagram.Configuration {
		d := datagram.DefaultConfiguration()
		d.Listen = []string{"0.0.0.0:" + strconv.Itoa(port)}
		return d
	}
	switch typ {
	case "pmacct":
		return &PmacctInput{InputCommon: InputCommon{Type: typ}, Configuration: pmacct.DefaultConfiguration()}
	case "kafka":
		return &KafkaInput{InputCommon: InputCommon{Type: typ}, Configuration: kafkainput.DefaultConfiguration(),
			Timezone: setting.Location{Location: time.Local}}
	case "netflow":
		return &NetFlowInput{InputCommon: InputCommon{Type: typ}, Receive: Receive{Configuration: flowListen(NetFlowPort)},
			Configuration: netflow.DefaultConfiguration()}
	case "sflow":
		return &SFlowInput{InputCommon: InputCommon{Type: typ}, Receive: Receive{Configuration: flowListen(SFlowPort)},
			Configuration: sflow.DefaultConfiguration()}
	case "pcap":
		return &PcapInput{InputCommon: InputCommon{Type: typ}, Configuration: pcap.DefaultConfiguration()}
	}
	return nil
}

const inputTypes = `"pmacct", "kafka", "netflow", "sflow" or "pcap"`

// Pipeline turns records into documents for its outputs; fed by flow inputs
// it aggregates them first, as one pmacct plugin does.
type Pipeline struct {
	Name string `toml:"name"`
	// Transformations is a p2es Transformations list: a path to a JSON file, or the
	// JSON text itself when it starts with '['.
	Transformations string   `toml:"transformations,omitempty"`
	Outputs         []string `toml:"outputs"`
	// TimestampFields are the fields whose first present value is a
	// record's time: its index (strftime) and @timestamp.
	TimestampFields []string `toml:"timestamp_fields"`

	// Aggregation of flows, with pmacct's names (a pipeline is one pmacct plugin).
	Aggregate       []string         `toml:"aggregate,omitempty"`                // primitives; default src_host, as pmacct
	Filter          string           `toml:"filter,omitempty"`                   // aggregate_filter, libpcap syntax
	PreTagFilter    string           `toml:"pre_tag_filter,omitempty"`           // the tags it takes, of its inputs' pre_tag_map: "1,5-9,-3"
	PreTag2Filter   string           `toml:"pre_tag2_filter,omitempty"`          // the same for tag2
	PreLabelFilter  string           `toml:"pre_tag_label_filter,omitempty"`     // labels ("null": none), each a prefix
	PostTag         uint64           `toml:"post_tag,omitzero"`                  // tag of every record, after the filters
	PostTag2        uint64           `toml:"post_tag2,omitzero"`                 // tag2 likewise
	Refresh         setting.Duration `toml:"refresh,omitempty"`                  // print_refresh_time
	History         string           `toml:"history,omitempty"`                  // print_history: N followed by s, m, h, d, w or M (calendar months)
	HistoryOffset   setting.Duration `toml:"history_offset,omitzero"`            // print_history_offset: bins that much earlier
	CacheEntries    int              `toml:"cache_entries,omitzero"`             // print_cache_entries: flush at once when the cache holds that many aggregates (0: no bound)
	HistoryRoundoff string           `toml:"history_roundoff,omitempty"`         // print_history_roundoff: m, h, d, w or M, in turn
	Renormalize     bool             `toml:"renormalize,omitempty"`              // multiply packets and bytes by the sampling rate
	TimeNew         bool             `toml:"time_new,omitempty"`                 // nfacctd_time_new: bin flows by arrival, not flow start
	NetworksFile    string           `toml:"networks_file,omitempty"`            // prefix -> net, mask, AS (longest match)
	NetSource       string           `toml:"net_source,omitempty"`               // nfacctd_net: netflow (sflow), file, mask, longest (fallback), bgp; default file with networks_file, mask with networks_mask
	ASSource        string           `toml:"as_source,omitempty"`                // nfacctd_as: netflow (sflow), file, longest (fallback), bgp; default file with networks_file
	PeerSrcASSource string           `toml:"peer_src_as_source,omitempty"`       // bgp_peer_src_as_type: netflow (sflow), bgp; default the record's
	NetworksMask    uint8            `toml:"networks_mask,omitzero"`             // the mask of net_source = "mask"
	NetworksNoLPM   bool             `toml:"networks_file_no_lpm,omitempty"`     // longest: any file match wins, not only a longer one
	NetworksFilter  bool             `toml:"networks_file_filter,omitempty"`     // an address the file does not match becomes 0.0.0.0 (::)
	NoMaskIfZero    bool             `toml:"networks_no_mask_if_zero,omitempty"` // a net of mask 0 is the whole address
	SamplingRate    uint32           `toml:"sampling_rate,omitzero"`             // pcap inputs: keep 1 packet in N at random, as pmacctd

	// How aggregates are written: pmacct's timestamps_* and the like.
	flow.Format

	// Enrichment, before the transformations; reloaded on SIGHUP.
	enrich.Configuration

	// a p2es file's list, kept as JSON with the file it came from
	transformations       []byte
	transformationsSource string
}

// PreTagFilters returns the pipeline's pre_tag_filter, pre_tag2_filter and
// pre_tag_label_filter; an error is a setting.KeyError naming the key.
func (p *Pipeline) PreTagFilters() (pretag.Filters, error) {
	var f pretag.Filters
	var err error
	if f.Tag, err = pretag.ParseTagFilter(p.PreTagFilter); err != nil {
		return f, setting.Key("pre_tag_filter", err)
	}
	if f.Tag2, err = pretag.ParseTagFilter(p.PreTag2Filter); err != nil {
		return f, setting.Key("pre_tag2_filter", err)
	}
	if f.Label, err = pretag.ParseLabelFilter(p.PreLabelFilter); err != nil {
		return f, setting.Key("pre_tag_label_filter", err)
	}
	return f, nil
}

// DefaultTimestampFields are where a record's time is read from, in order:
// the bin's start, the flow's, the packet's arrival.
var DefaultTimestampFields = []string{"stamp_inserted", "timestamp_start", "timestamp_arrival"}

// newPipeline returns a pipeline with every default.
func newPipeline() Pipeline {
	return Pipeline{TimestampFields: append([]string(nil), DefaultTimestampFields...)}
}

// TransformationsJSON returns the pipeline's p2es Transformations list as JSON, the
// name to use in messages, and the directory relative LookupTableFile paths are
// read from; nil data when there is none.
func (p *Pipeline) TransformationsJSON(c *Config) (data []byte, source, baseDir string, err error) {
	switch t := strings.TrimSpace(p.Transformations); {
	case p.transformations != nil:
		// p2es reads LookupTableFile relative to its working directory
		return p.transformations, p.transformationsSource, ".", nil
	case t == "":
		return nil, "", "", nil
	case strings.HasPrefix(t, "["):
		return []byte(t), c.File + ": pipeline " + strconv.Quote(p.Name), filepath.Dir(c.File), nil
	default:
		path := c.Resolve(t)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", "", err // the caller names the pipeline and the key
		}
		return data, path, filepath.Dir(path), nil
	}
}

// Output is one [output.NAME]: a *ElasticsearchOutput, *KafkaOutput or
// *PrintOutput.
type Output interface {
	Common() *OutputCommon
}

// OutputCommon is what every output has; its name is its table's.
type OutputCommon struct {
	Type string `toml:"type"`
}

// Common returns the type.
func (c *OutputCommon) Common() *OutputCommon { return c }

// PrintOutput writes pmacct's print format: type = "print".
type PrintOutput struct {
	OutputCommon
	file.Configuration
}

// KafkaOutput publishes to Apache Kafka as pmacct's kafka plugin does: type
// = "kafka".
type KafkaOutput struct {
	OutputCommon
	kafkaoutput.Configuration
}

// ElasticsearchOutput indexes into Elasticsearch: type = "elasticsearch".
type ElasticsearchOutput struct {
	OutputCommon
	elasticsearch.Configuration
	RetentionConfiguration
}

// RetentionConfiguration is an elasticsearch output's retention (the name
// under which it is embedded).
type RetentionConfiguration = retention.Configuration

// newOutput returns an output of type typ with every default, nil for an
// unknown type.
func newOutput(typ string) Output {
	switch typ {
	case "print":
		return &PrintOutput{OutputCommon: OutputCommon{Type: typ}, Configuration: file.DefaultConfiguration()}
	case "kafka":
		return &KafkaOutput{OutputCommon: OutputCommon{Type: typ}, Configuration: kafkaoutput.DefaultConfiguration()}
	case "elasticsearch":
		return &ElasticsearchOutput{OutputCommon: OutputCommon{Type: typ},
			Configuration: elasticsearch.DefaultConfiguration(), RetentionConfiguration: retention.DefaultConfiguration()}
	}
	return nil
}

const outputTypes = `"elasticsearch", "kafka" or "print"`

// Default is the configuration used when none is given: pmacct JSON on standard
// input, printed to standard output in pmacct's format.
func Default() *Config {
	in := newInput("pmacct").(*PmacctInput)
	in.File = "-"
	c := &Config{Inputs: []Input{in}}
	c.derive(nil)
	return c
}

// Pipeline returns the pipeline called name, or nil.
func (c *Config) Pipeline(name string) *Pipeline {
	for i := range c.Pipelines {
		if c.Pipelines[i].Name == name {
			return &c.Pipelines[i]
		}
	}
	return nil
}

// Resolve makes a path from the configuration absolute, relative to the
// configuration file; "" and "-" (standard input or output) stay.
func (c *Config) Resolve(path string) string {
	if path == "" || path == "-" || filepath.IsAbs(path) || c.File == "" {
		return path
	}
	return absolute(filepath.Join(filepath.Dir(c.File), path))
}

// isLoopback reports whether the host of listen (host:port) is a loopback
// address or "localhost".
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
