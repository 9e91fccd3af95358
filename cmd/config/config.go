// Package config loads flowdex's TOML configuration and pmacct-to-elasticsearch's
// JSON plugin files, checks them, and reports every mistake as file:line:column
// with what was expected.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/networks"
	"github.com/flowdex/flowdex/aggregate/spelling"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
)

// Config is the whole flowdex configuration.
type Config struct {
	Log       Log               `toml:"log"`
	HTTP      HTTP              `toml:"http"`
	Inputs    []Input           `toml:"input"`
	Pipelines []Pipeline        `toml:"pipeline"`
	Outputs   map[string]Output `toml:"output"`

	// File is where the configuration came from ("" for the built-in default).
	File string `toml:"-"`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
	File   string `toml:"file"`   // "" or "-" for standard error
}

// HTTP is flowdex's own HTTP server: /metrics (Prometheus), /healthz, /readyz.
type HTTP struct {
	// Listen is the address to serve on; "" (no [http] table) serves nothing.
	// An [http] table without it listens on DefaultHTTPListen: loopback only,
	// since the metrics name exporters and the web view shows traffic.
	Listen string `toml:"listen"`
	// Web serves the web view at / (default: on when Listen is a loopback
	// address, off otherwise): traffic and top lists
	// from the Elasticsearch output WebOutput (default: the first by name).
	Web       *bool  `toml:"web,omitempty"`
	WebOutput string `toml:"web_output,omitempty"`
}

// DefaultHTTPListen is where an [http] table without listen serves.
const DefaultHTTPListen = "127.0.0.1:8090"

// Input is one source of records.
type Input struct {
	Name string `toml:"name"`
	Type string `toml:"type"` // pmacct (pmacct's JSON/CSV output), netflow (v5, v9, IPFIX) or sflow

	// pmacct
	File         string   `toml:"file"`          // path, or "-" for standard input
	Format       string   `toml:"format"`        // json, csv or auto
	CSVSeparator string   `toml:"csv_separator"` // pmacct's print_output_separator
	CSVNames     string   `toml:"csv_names"`     // lowercase (p2es) or pmacct (JSON key names)
	Timezone     string   `toml:"timezone"`      // how pmacct's naive timestamps are read: Local, UTC or a zone name
	Follow       bool     `toml:"follow"`        // run: keep reading as pmacct rewrites or appends the file
	Poll         Duration `toml:"poll"`          // run: how often a followed file is checked

	Pipeline string `toml:"pipeline"` // pmacct: the pipeline its records go to

	// netflow and sflow
	Listen        []string           `toml:"listen,omitempty"`         // UDP addresses, e.g. "0.0.0.0:2100", "[::]:2100"
	Sockets       int                `toml:"sockets,omitempty"`        // SO_REUSEPORT sockets per address
	ReadBuffer    int                `toml:"read_buffer,omitempty"`    // SO_RCVBUF bytes
	Queue         int                `toml:"queue,omitempty"`          // datagrams queued per socket before drops
	Replay        string             `toml:"replay,omitempty"`         // a pcap of exported datagrams read instead of sockets (nfacctd -I)
	ReplaySpeed   float64            `toml:"replay_speed,omitempty"`   // 0: as fast as possible; 1: recorded speed
	TemplatesFile string             `toml:"templates_file,omitempty"` // netflow: where templates are kept across restarts
	Sampling      []SamplingOverride `toml:"sampling,omitempty"`       // per-exporter sampling rate, over what the exporter says
	Exporters     []string           `toml:"exporters,omitempty"`      // allow-list: addresses or prefixes; others are dropped and counted
	Pipelines     []string           `toml:"pipelines,omitempty"`      // the pipelines its flows go to (default: all)

	// pcap (file is shared with pmacct inputs: a capture file read instead of an interface)
	Interface string `toml:"interface,omitempty"` // a device or "any"
	Filter    string `toml:"filter,omitempty"`    // capture filter, libpcap syntax (pcap_filter)
	Snaplen   int    `toml:"snaplen,omitempty"`   // bytes captured per packet
	Promisc   *bool  `toml:"promisc,omitempty"`   // promiscuous mode, default true
	Direction string `toml:"direction,omitempty"` // in, out or inout (pcap_direction)
	// the traffic reaching the interface is sampled already, 1 in N
	// (pmacctd_ext_sampling_rate); pipelines with renormalize scale it back
	ExtSamplingRate uint32 `toml:"ext_sampling_rate,omitempty"`
}

// SamplingOverride sets the sampling rate of the exporters in a prefix.
type SamplingOverride struct {
	Exporters string `toml:"exporters"` // an address or a prefix
	Rate      uint32 `toml:"rate"`
}

// IsFlow reports whether the input receives flows (NetFlow/IPFIX or sFlow).
func (in *Input) IsFlow() bool {
	return in.Type == "netflow" || in.Type == "sflow" || in.Type == "pcap"
}

// Pipeline turns records into documents for its outputs.
type Pipeline struct {
	Name string `toml:"name"`
	// Transformations is a p2es Transformations list: a path to a JSON file, or the
	// JSON text itself when it starts with '['.
	Transformations string   `toml:"transformations"`
	Outputs         []string `toml:"outputs"`

	// Aggregation of flows, with pmacct's names (a pipeline is one pmacct plugin).
	Aggregate       []string `toml:"aggregate,omitempty"`        // primitives; default src_host, as pmacct
	Filter          string   `toml:"filter,omitempty"`           // aggregate_filter, libpcap syntax
	Refresh         Duration `toml:"refresh"`                    // print_refresh_time
	History         string   `toml:"history,omitempty"`          // print_history: N followed by s, m, h, d or w
	HistoryRoundoff string   `toml:"history_roundoff,omitempty"` // print_history_roundoff: m, h, d or w
	Renormalize     bool     `toml:"renormalize,omitempty"`      // multiply packets and bytes by the sampling rate
	TimeNew         bool     `toml:"time_new,omitempty"`         // nfacctd_time_new: bin flows by arrival, not flow start
	NetworksFile    string   `toml:"networks_file,omitempty"`    // prefix -> net, mask, AS (longest match)
	SamplingRate    uint32   `toml:"sampling_rate,omitempty"`    // pcap inputs: keep 1 packet in N at random, as pmacctd

	TimestampsUTC        bool `toml:"timestamps_utc,omitempty"`
	TimestampsRFC3339    bool `toml:"timestamps_rfc3339,omitempty"`
	TimestampsSinceEpoch bool `toml:"timestamps_since_epoch,omitempty"`
	TimestampsSecs       bool `toml:"timestamps_secs,omitempty"`
	NumProtos            bool `toml:"num_protos,omitempty"`               // print_num_protos
	TCPFlagsArray        bool `toml:"tcpflags_encode_as_array,omitempty"` // tcpflags_encode_as_array

	// Enrichment (cmd/config/enrich.go), before the transformations; reloaded on SIGHUP.
	GeoIPDatabase  string `toml:"geoip_database,omitempty"`  // a City or Country MMDB
	ASNDatabase    string `toml:"asn_database,omitempty"`    // an ASN MMDB
	Services       bool   `toml:"services,omitempty"`        // port names from /etc/services
	ServicesFile   string `toml:"services_file,omitempty"`   // port names from this file instead
	InterfacesFile string `toml:"interfaces_file,omitempty"` // CSV: exporter,ifindex,name[,description]

	// a p2es file's list, kept as JSON with the file it came from
	transformations       []byte
	transformationsSource string
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
			return nil, "", "", fmt.Errorf("pipeline %q: transformations: %w", p.Name, err)
		}
		return data, path, filepath.Dir(path), nil
	}
}

// Output is a destination: "elasticsearch" or "print".
type Output struct {
	Type string `toml:"type"`

	// elasticsearch
	URLs            []string `toml:"urls"`
	Username        string   `toml:"username"`
	Password        string   `toml:"password"`
	PasswordFile    string   `toml:"password_file"`
	PasswordEnv     string   `toml:"password_env"`
	APIKey          string   `toml:"api_key"`      // an Elasticsearch API key (base64), instead of username/password
	APIKeyFile      string   `toml:"api_key_file"` // the key read from this file
	APIKeyEnv       string   `toml:"api_key_env"`  // the key read from this environment variable
	CACert          string   `toml:"ca_cert"`      // PEM CA file trusted for https URLs, besides the system's
	TLSInsecure     bool     `toml:"tls_insecure_skip_verify"`
	Index           string   `toml:"index"`           // strftime pattern
	IndexTimezone   string   `toml:"index_timezone"`  // UTC or Local
	DocType         string   `toml:"doc_type"`        // p2es ES_Type: ignored on ES >= 7
	Template        *bool    `toml:"template"`        // install the index template at start
	TemplateName    string   `toml:"template_name"`   //
	IndexBodyFile   string   `toml:"index_body_file"` // p2es ES_IndexTemplateFileName
	Shards          int      `toml:"shards"`
	Replicas        *int     `toml:"replicas"`
	RefreshInterval string   `toml:"refresh_interval"`
	TimestampFields []string `toml:"timestamp_fields"`
	FlushDocs       int      `toml:"flush_docs"` // -1: no limit, the bytes limit alone
	FlushBytes      int      `toml:"flush_bytes"`
	FlushInterval   Duration `toml:"flush_interval"`
	Workers         int      `toml:"workers"`
	MaxRetries      *int     `toml:"max_retries"`
	DeadLetterFile  string   `toml:"dead_letter_file"`
	SpoolDir        string   `toml:"spool_dir"`       // requests Elasticsearch cannot take now wait here, across restarts
	SpoolMaxBytes   int64    `toml:"spool_max_bytes"` // default 1 GiB
	RequestTimeout  Duration `toml:"request_timeout"` // one bulk request; default 1m
	// Retention deletes the indices of the pattern whose period ended longer ago
	// (Curator's job); 0: never. RetentionInterval: how often the daemon does it.
	Retention         Duration `toml:"retention"`
	RetentionInterval Duration `toml:"retention_interval"`

	// print
	File string `toml:"file"` // "-" for standard output
}

// Duration is a time.Duration written as "30s", "5m", "1h" or "30d".
type Duration struct{ time.Duration }

// UnmarshalText reads a duration, accepting a day suffix as pmacct and Curator users write.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("invalid duration %q (expected e.g. \"30s\", \"5m\", \"1h\" or \"30d\")", s)
		}
		d.Duration = time.Duration(days) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (expected e.g. \"30s\", \"5m\", \"1h\" or \"30d\")", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back, for check's effective configuration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default is the configuration used when none is given: pmacct JSON on standard
// input, printed to standard output in pmacct's format.
func Default() *Config {
	c := &Config{
		Inputs:    []Input{{Type: "pmacct", File: "-"}},
		Pipelines: []Pipeline{{Name: "default"}},
		Outputs:   map[string]Output{"stdout": {Type: "print"}},
	}
	c.applyDefaults()
	return c
}

// Load reads and checks a TOML configuration file.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse reads and checks a TOML configuration; name is used in messages and to
// resolve relative paths.
func Parse(name string, src []byte) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(src), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				msg = pe.LastKey + ": " + msg
			}
			if pe.Usage != "" {
				msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
			}
			return nil, &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Msg: msg}
		}
		// type mismatches come as plain errors: "toml: line N (last key "a.b"): ..."
		if m := decodeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			col := 0
			if l, c := newTOMLLocator(src).find(strings.Split(m[2], ".")...); l == line {
				col = c
			}
			return nil, &Error{File: name, Line: line, Col: col, Msg: m[2] + ": " + m[3]}
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	loc := newTOMLLocator(src)
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		k := undecoded[0]
		line, col := loc.find(k...)
		return nil, &Error{File: name, Line: line, Col: col,
			Msg: fmt.Sprintf("unknown key %q%s", k.String(), suggest(k))}
	}
	c.File = name
	if md.IsDefined("http") && c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	c.applyDefaults()
	if err := c.check(name, loc); err != nil {
		return nil, err
	}
	return &c, nil
}

var decodeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// known keys per table, for "did you mean" on an unknown key
var knownKeys = map[string][]string{
	"":     {"log", "http", "input", "pipeline", "output"},
	"log":  {"level", "format", "file"},
	"http": {"listen", "web", "web_output"},
	"input": {"name", "type", "file", "format", "csv_separator", "csv_names", "timezone", "follow", "poll", "pipeline",
		"listen", "sockets", "read_buffer", "queue", "replay", "replay_speed", "templates_file", "sampling", "pipelines",
		"interface", "filter", "snaplen", "promisc", "direction", "ext_sampling_rate", "exporters"},
	"pipeline": {"name", "transformations", "outputs", "aggregate", "filter", "refresh", "history", "history_roundoff",
		"renormalize", "time_new", "networks_file", "sampling_rate", "timestamps_utc", "timestamps_rfc3339", "timestamps_since_epoch",
		"timestamps_secs", "num_protos", "tcpflags_encode_as_array",
		"geoip_database", "asn_database", "services", "services_file", "interfaces_file"},
	"output": {"type", "urls", "username", "password", "password_file", "password_env", "api_key", "api_key_file", "api_key_env", "ca_cert",
		"tls_insecure_skip_verify", "index", "index_timezone",
		"doc_type", "template", "template_name", "index_body_file", "shards", "replicas", "refresh_interval",
		"timestamp_fields", "flush_docs", "flush_bytes", "flush_interval", "workers", "max_retries",
		"dead_letter_file", "spool_dir", "spool_max_bytes", "request_timeout", "retention", "retention_interval", "file"},
}

func suggest(k toml.Key) string {
	table := ""
	if len(k) > 1 {
		table = k[0]
	}
	keys := knownKeys[table]
	if keys == nil {
		return ""
	}
	if best := spelling.Closest(k[len(k)-1], keys); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (expected one of " + strings.Join(keys, ", ") + ")"
}

func (c *Config) applyDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		if in.Name == "" {
			in.Name = fmt.Sprintf("input%d", i+1)
		}
		if in.Type == "pmacct" {
			if in.Format == "" {
				in.Format = "auto"
			}
			if in.CSVSeparator == "" {
				in.CSVSeparator = ","
			}
			if in.CSVNames == "" {
				in.CSVNames = "lowercase"
			}
			if in.Timezone == "" {
				in.Timezone = "Local"
			}
			if in.Poll.Duration == 0 {
				in.Poll.Duration = time.Second
			}
		}
		if in.Type == "pcap" {
			if in.Snaplen == 0 {
				in.Snaplen = 512 // headers only: a whole-packet snaplen shrinks libpcap's ring to a few packets
			}
			if in.Promisc == nil {
				t := true
				in.Promisc = &t
			}
		} else if in.IsFlow() {
			if len(in.Listen) == 0 && in.Replay == "" {
				port := "2100" // nfacctd's default port
				if in.Type == "sflow" {
					port = "6343"
				}
				in.Listen = []string{"0.0.0.0:" + port}
			}
			if in.Sockets == 0 {
				in.Sockets = 1
			}
			if in.ReadBuffer == 0 {
				in.ReadBuffer = 8 << 20
			}
			if in.Queue == 0 {
				in.Queue = 4096
			}
		}
	}
	if len(c.Outputs) == 0 {
		c.Outputs = map[string]Output{"stdout": {Type: "print"}}
	}
	if len(c.Pipelines) == 0 {
		c.Pipelines = []Pipeline{{Name: "default"}}
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Name == "" {
			p.Name = fmt.Sprintf("pipeline%d", i+1)
		}
		if len(p.Outputs) == 0 {
			for name := range c.Outputs {
				p.Outputs = append(p.Outputs, name)
			}
			slices.Sort(p.Outputs)
		}
	}
	// pmacct records go to the first pipeline; flows to every pipeline that takes
	// no pmacct records (those are aggregated already)
	takesPmacct := map[string]bool{}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		if !in.IsFlow() {
			if in.Pipeline == "" {
				in.Pipeline = c.Pipelines[0].Name
			}
			takesPmacct[in.Pipeline] = true
		}
	}
	for i := range c.Pipelines {
		if p := &c.Pipelines[i]; !takesPmacct[p.Name] && p.Refresh.Duration == 0 {
			p.Refresh.Duration = time.Minute // pmacct's print_refresh_time
		}
	}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		if in.IsFlow() && len(in.Pipelines) == 0 {
			for _, p := range c.Pipelines {
				if !takesPmacct[p.Name] {
					in.Pipelines = append(in.Pipelines, p.Name)
				}
			}
		}
	}
	for name, o := range c.Outputs {
		switch o.Type {
		case "elasticsearch":
			if len(o.URLs) == 0 {
				o.URLs = []string{"http://127.0.0.1:9200"}
			}
			if o.Index == "" {
				o.Index = "flowdex-%Y.%m.%d"
			}
			if o.IndexTimezone == "" {
				o.IndexTimezone = "UTC"
			}
			if o.Template == nil {
				t := true
				o.Template = &t
			}
			if len(o.TimestampFields) == 0 {
				o.TimestampFields = []string{"stamp_inserted", "timestamp_start", "timestamp_arrival"}
			}
			if o.FlushDocs == 0 {
				o.FlushDocs = 5000
			}
			if o.FlushBytes == 0 {
				o.FlushBytes = 5 << 20
			}
			if o.FlushInterval.Duration == 0 {
				o.FlushInterval.Duration = 5 * time.Second
			}
			if o.Workers == 0 {
				o.Workers = 2
			}
			if o.MaxRetries == nil {
				n := 10 // about 45 s of backoff: an Elasticsearch restart loses nothing
				o.MaxRetries = &n
			}
			if o.Retention.Duration > 0 && o.RetentionInterval.Duration == 0 {
				o.RetentionInterval.Duration = time.Hour
			}
		case "print":
			if o.File == "" {
				o.File = "-"
			}
		}
		c.Outputs[name] = o
	}
	if c.HTTP.Listen != "" {
		if c.HTTP.Web == nil {
			// the web view shows who talks to whom: on by itself only where
			// nobody but this host can reach it
			on := isLoopback(c.HTTP.Listen)
			c.HTTP.Web = &on
		}
		if *c.HTTP.Web && c.HTTP.WebOutput == "" {
			for _, name := range c.outputNames() {
				// the first by name whose indices the view can search
				if o := c.Outputs[name]; o.Type == "elasticsearch" && elasticsearch.Searchable(o.Index) == nil {
					c.HTTP.WebOutput = name // none: no web view
					break
				}
			}
		}
	}
}

func (c *Config) check(name string, loc *tomlLocator) error {
	var fail failFunc = func(path []string, format string, args ...any) error {
		line, col := loc.find(path...)
		return &Error{File: name, Line: line, Col: col, Msg: strings.Join(path, ".") + ": " + fmt.Sprintf(format, args...)}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return fail([]string{"log", "level"}, "unknown level %q (expected debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fail([]string{"log", "format"}, "unknown format %q (expected text or json)", c.Log.Format)
	}
	if len(c.Inputs) == 0 {
		return &Error{File: name, Msg: "no [[input]] (expected at least one, e.g. type = \"pmacct\")"}
	}
	if l := c.HTTP.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil || !isPort(port) {
			return fail([]string{"http", "listen"}, "%q is not a host and port (expected e.g. %q, or \"[::1]:8090\")", l, DefaultHTTPListen)
		}
	}
	if w := c.HTTP.WebOutput; w != "" && c.Outputs[w].Type != "elasticsearch" {
		return fail([]string{"http", "web_output"}, "%q is not an elasticsearch output (expected one of the [output.NAME] tables with type = \"elasticsearch\")", w)
	}
	pipelines := map[string]bool{}
	for i, p := range c.Pipelines {
		if pipelines[p.Name] {
			return fail(at("pipeline", i, "name"), "pipeline %q defined twice", p.Name)
		}
		pipelines[p.Name] = true
		for j, o := range p.Outputs {
			if slices.Contains(p.Outputs[:j], o) {
				return fail(at("pipeline", i, "outputs"), "output %q listed twice", o)
			}
			if _, ok := c.Outputs[o]; !ok {
				return fail(at("pipeline", i, "outputs"), "unknown output %q (expected one of the [output.NAME] tables: %s)", o, strings.Join(c.outputNames(), ", "))
			}
		}
		if len(p.Outputs) == 0 {
			return fail(at("pipeline", i, "outputs"), "pipeline %q has no output (expected an [output.NAME] table)", p.Name)
		}
	}
	inputs := map[string]bool{}
	for i, in := range c.Inputs {
		if inputs[in.Name] {
			return fail(at("input", i, "name"), "input %q defined twice", in.Name)
		}
		inputs[in.Name] = true
		var err error
		switch in.Type {
		case "pmacct":
			err = c.checkPmacctInput(i, &in, pipelines, fail)
		case "netflow", "sflow":
			err = c.checkFlowInput(i, &in, pipelines, fail)
		case "pcap":
			err = c.checkPcapInput(i, &in, pipelines, fail)
		case "":
			return fail(at("input", i, "type"), "missing type (expected %s)", inputTypes)
		default:
			return fail(at("input", i, "type"), "unknown input type %q (expected %s)", in.Type, inputTypes)
		}
		if err != nil {
			return err
		}
	}
	for i := range c.Pipelines {
		if err := c.checkAggregation(i, fail); err != nil {
			return err
		}
		if err := c.checkEnrichment(i, fail); err != nil {
			return err
		}
	}
	printFiles := map[string]string{}
	for _, oname := range c.outputNames() {
		o := c.Outputs[oname]
		if o.Type == "print" {
			// two writers on one file would interleave their buffers mid-line
			f := c.Resolve(o.File)
			if other, ok := printFiles[f]; ok {
				return fail([]string{"output", oname, "file"}, "outputs %q and %q both print to %q", other, oname, o.File)
			}
			printFiles[f] = oname
		}
		path := func(key string) []string { return []string{"output", oname, key} }
		switch o.Type {
		case "elasticsearch":
			if _, err := LoadLocation(o.IndexTimezone); err != nil {
				return fail(path("index_timezone"), "%v", err)
			}
			n := 0
			for _, v := range []string{o.Password, o.PasswordFile, o.PasswordEnv} {
				if v != "" {
					n++
				}
			}
			if n > 1 {
				return fail(path("password"), "give one of password, password_file and password_env")
			}
			keys := 0
			for _, v := range []string{o.APIKey, o.APIKeyFile, o.APIKeyEnv} {
				if v != "" {
					keys++
				}
			}
			if keys > 1 {
				return fail(path("api_key"), "give one of api_key, api_key_file and api_key_env")
			}
			if keys > 0 && (n > 0 || o.Username != "") {
				return fail(path("api_key"), "an API key and a username/password: give one way to authenticate")
			}
			if o.FlushDocs < -1 {
				return fail(path("flush_docs"), "%d is not a document count (expected -1 for no limit, or more)", o.FlushDocs)
			}
			if o.FlushBytes < 0 || o.Workers < 0 || *o.MaxRetries < 0 {
				return fail(path("flush_bytes"), "flush_bytes, workers and max_retries cannot be negative")
			}
			if err := checkRetention(&o, path, fail); err != nil {
				return err
			}
		case "print":
			if o.Retention.Duration != 0 || o.RetentionInterval.Duration != 0 {
				return fail(path("retention"), "retention deletes Elasticsearch indices (expected it on an elasticsearch output)")
			}
		case "":
			return fail([]string{"output", oname}, "missing type (expected \"elasticsearch\" or \"print\")")
		default:
			return fail(path("type"), "unknown output type %q (expected \"elasticsearch\" or \"print\")", o.Type)
		}
	}
	return nil
}

// checkRetention checks an elasticsearch output's retention keys.
func checkRetention(o *Output, path func(string) []string, fail failFunc) error {
	r := o.Retention.Duration
	switch {
	case r == 0 && o.RetentionInterval.Duration != 0:
		return fail(path("retention_interval"), "retention_interval without retention (expected retention, e.g. \"30d\")")
	case r == 0:
		return nil
	case r < time.Hour:
		return fail(path("retention"), "%v is too short (expected 1h or more, e.g. \"30d\")", r)
	case o.RetentionInterval.Duration < time.Minute:
		return fail(path("retention_interval"), "%v is too short (expected 1m or more; default 1h)", o.RetentionInterval.Duration)
	}
	if err := retention.Check(o.Index); err != nil {
		return fail(path("retention"), "cannot apply to index %q: %v", o.Index, err)
	}
	return nil
}

const inputTypes = `"pmacct", "netflow", "sflow" or "pcap"`

// failFunc reports a mistake at a key of the configuration.
type failFunc func(path []string, format string, args ...any) error

func at(table string, i int, key string) []string {
	return []string{table + "#" + strconv.Itoa(i), key}
}

func (c *Config) checkPmacctInput(i int, in *Input, pipelines map[string]bool, fail failFunc) error {
	if in.File == "" {
		return fail(at("input", i, "file"), "missing file (expected a path, or \"-\" for standard input)")
	}
	// the reader's own parsers say what is accepted
	if _, err := pmacct.ParseFormat(in.Format); err != nil {
		return fail(at("input", i, "format"), "%v", err)
	}
	if _, err := pmacct.ParseSeparator(in.CSVSeparator); err != nil {
		return fail(at("input", i, "csv_separator"), "%v", err)
	}
	if _, err := pmacct.ParseNames(in.CSVNames); err != nil {
		return fail(at("input", i, "csv_names"), "%v", err)
	}
	if _, err := LoadLocation(in.Timezone); err != nil {
		return fail(at("input", i, "timezone"), "%v", err)
	}
	if in.Follow && in.File == "-" {
		return fail(at("input", i, "follow"), "cannot follow standard input (expected a file path)")
	}
	if !pipelines[in.Pipeline] {
		return fail(at("input", i, "pipeline"), "unknown pipeline %q", in.Pipeline)
	}
	if p := c.Pipeline(in.Pipeline); len(p.Aggregate) > 0 {
		return fail(at("input", i, "pipeline"), "pipeline %q aggregates flows, and pmacct records are aggregated already (expected a pipeline without aggregate)", in.Pipeline)
	}
	return nil
}

func (c *Config) checkFlowInput(i int, in *Input, pipelines map[string]bool, fail failFunc) error {
	if in.File != "" || in.Follow || in.Pipeline != "" {
		return fail(at("input", i, "file"), "file, follow and pipeline are for pmacct inputs (expected listen or replay, and pipelines)")
	}
	for _, l := range in.Listen {
		if _, err := netip.ParseAddrPort(l); err != nil {
			return fail(at("input", i, "listen"), "%q is not an address and port (expected e.g. \"0.0.0.0:2100\" or \"[::]:2100\")", l)
		}
	}
	if in.Replay != "" && len(in.Listen) > 0 {
		return fail(at("input", i, "replay"), "give listen or replay, not both")
	}
	if in.Sockets < 1 || in.Queue < 1 || in.ReadBuffer < 0 {
		return fail(at("input", i, "sockets"), "sockets and queue must be at least 1, read_buffer not negative")
	}
	for _, e := range in.Exporters {
		if _, err := ParsePrefix(e); err != nil {
			return fail(at("input", i, "exporters"), "%v", err)
		}
	}
	if in.ExtSamplingRate > 0 {
		return fail(at("input", i, "ext_sampling_rate"), "ext_sampling_rate is for pcap inputs (expected [[input.sampling]] to set an exporter's rate)")
	}
	if in.TemplatesFile != "" && in.Type != "netflow" {
		return fail(at("input", i, "templates_file"), "templates are a NetFlow v9/IPFIX matter (expected no templates_file on an sflow input)")
	}
	for j, s := range in.Sampling {
		if _, err := ParsePrefix(s.Exporters); err != nil {
			return fail([]string{"input#" + strconv.Itoa(i), "sampling#" + strconv.Itoa(j), "exporters"}, "%v", err)
		}
		if s.Rate == 0 {
			return fail([]string{"input#" + strconv.Itoa(i), "sampling#" + strconv.Itoa(j), "rate"}, "missing rate (expected 1 or more: one packet in rate was sampled)")
		}
	}
	for _, name := range in.Pipelines {
		if p := c.Pipeline(name); p != nil && p.SamplingRate > 0 {
			return fail(at("input", i, "pipelines"), "pipeline %q samples packets (sampling_rate), and flows from exporters are sampled by them (expected sampling_rate only on pipelines fed by pcap inputs)", name)
		}
	}
	return checkFlowInputCommon(i, in, pipelines, fail)
}

// checkFlowInputCommon checks what every flow input (netflow, sflow, pcap) has:
// the replay pace and the pipelines it feeds.
func checkFlowInputCommon(i int, in *Input, pipelines map[string]bool, fail failFunc) error {
	if in.ReplaySpeed < 0 {
		return fail(at("input", i, "replay_speed"), "%g is negative (expected 0 for as fast as possible, 1 for recorded speed)", in.ReplaySpeed)
	}
	if len(in.Pipelines) == 0 {
		return fail(at("input", i, "pipelines"), "no pipeline takes flows (expected a [[pipeline]] that no pmacct input uses)")
	}
	for _, p := range in.Pipelines {
		if !pipelines[p] {
			return fail(at("input", i, "pipelines"), "unknown pipeline %q", p)
		}
	}
	return nil
}

func (c *Config) checkPcapInput(i int, in *Input, pipelines map[string]bool, fail failFunc) error {
	if (in.Interface == "") == (in.File == "") {
		return fail(at("input", i, "interface"), "give interface (a device or \"any\") or file (a pcap or pcapng file), one of them")
	}
	if in.Snaplen < 64 {
		return fail(at("input", i, "snaplen"), "%d is too small (expected 64 or more)", in.Snaplen)
	}
	switch in.Direction {
	case "", "in", "out", "inout":
	default:
		return fail(at("input", i, "direction"), "unknown direction %q (expected in, out or inout)", in.Direction)
	}
	if in.Filter != "" {
		if _, err := filter.Compile(in.Filter); err != nil {
			return fail(at("input", i, "filter"), "%v", err)
		}
	}
	if len(in.Listen) > 0 || in.Replay != "" || in.TemplatesFile != "" || in.Follow {
		return fail(at("input", i, "listen"), "listen, replay, templates_file and follow are not for pcap inputs (expected interface or file)")
	}
	if in.ExtSamplingRate > 0 {
		for _, name := range in.Pipelines {
			if p := c.Pipeline(name); p != nil && p.SamplingRate > 0 {
				return fail(at("input", i, "ext_sampling_rate"), "pipeline %q samples the packets again (sampling_rate); pmacctd refuses both together (expected one of them)", name)
			}
		}
	}
	return checkFlowInputCommon(i, in, pipelines, fail)
}

// checkAggregation checks the flow-aggregation settings of pipeline i.
func (c *Config) checkAggregation(i int, fail failFunc) error {
	p := &c.Pipelines[i]
	if _, err := flow.ParseAggregate(p.Aggregate); err != nil {
		return fail(at("pipeline", i, "aggregate"), "%v", err)
	}
	if _, err := ParseHistory(p.History); err != nil {
		return fail(at("pipeline", i, "history"), "%v", err)
	}
	switch p.HistoryRoundoff {
	case "", "m", "h", "d", "w":
	default:
		return fail(at("pipeline", i, "history_roundoff"), "unknown roundoff %q (expected m, h, d or w)", p.HistoryRoundoff)
	}
	if p.HistoryRoundoff != "" && p.History == "" {
		return fail(at("pipeline", i, "history_roundoff"), "history_roundoff without history")
	}
	if p.Refresh.Duration != 0 && p.Refresh.Duration < time.Second {
		return fail(at("pipeline", i, "refresh"), "%v is too short (expected 1s or more; pmacct's default is 60s)", p.Refresh.Duration)
	}
	if p.TimestampsRFC3339 && p.TimestampsSinceEpoch {
		return fail(at("pipeline", i, "timestamps_rfc3339"), "timestamps_rfc3339 and timestamps_since_epoch exclude each other")
	}
	if p.Filter != "" {
		if _, err := filter.Compile(p.Filter); err != nil {
			return fail(at("pipeline", i, "filter"), "%v", err)
		}
	}
	if p.NetworksFile != "" {
		if _, err := networks.Load(c.Resolve(p.NetworksFile)); err != nil {
			return fail(at("pipeline", i, "networks_file"), "%v", err)
		}
	}
	return nil
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

// ParsePrefix reads an address or a prefix; an address is a prefix of its full length.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix (expected e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix (expected e.g. \"192.0.2.1\" or \"192.0.2.0/24\")", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// ParseHistory reads pmacct's history bin length: a number followed by s, m, h, d
// or w ("" means no bins). Month bins (pmacct's M) are not supported.
func ParseHistory(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	unit, ok := units[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n < 1 {
		if s[len(s)-1] == 'M' {
			return 0, fmt.Errorf("month bins (%q) are not supported (expected s, m, h, d or w)", s)
		}
		return 0, fmt.Errorf("%q is not a bin length (expected a number followed by s, m, h, d or w, e.g. \"1m\" or \"5m\")", s)
	}
	return time.Duration(n) * unit, nil
}

func (c *Config) outputNames() []string {
	var names []string
	for n := range c.Outputs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Resolve makes a path from the configuration relative to the configuration file.
func (c *Config) Resolve(path string) string {
	if path == "" || path == "-" || filepath.IsAbs(path) || c.File == "" {
		return path
	}
	return filepath.Join(filepath.Dir(c.File), path)
}

// LoadLocation reads a time zone name: "Local", "UTC" or an IANA name.
func LoadLocation(name string) (*time.Location, error) {
	switch strings.ToLower(name) {
	case "local":
		return time.Local, nil
	case "utc", "":
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (expected Local, UTC or a name such as Europe/Rome)", name)
	}
	return loc, nil
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

// isPort reports whether s is a port number (0 picks a free one).
func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}
