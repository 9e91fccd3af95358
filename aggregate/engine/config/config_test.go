package config

import (
	"errors"
	"github.com/flowdex/flowdex/aggregate/flow"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/transform"
	"github.com/flowdex/flowdex/collector/pmacct"
)

const good = `
[log]
level = "info"

[[input]]
name = "print1"
type = "pmacct"
file = "/var/spool/pmacct/plugin1.json"
follow = true

[[input]]
name = "memory"
type = "pmacct"
file = "-"
format = "json"

[[pipeline]]
name = "default"
transformations = "[]"
outputs = ["es"]

[output.es]
type = "elasticsearch"
index = "flows-%Y.%m.%d"
flush_interval = "2s"
`

func TestParseGood(t *testing.T) {
	c, err := Parse("flowdex.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	es := c.Outputs["es"].(*ElasticsearchOutput)
	if es.FlushInterval.Seconds() != 2 || es.FlushDocs != 5000 || es.URLs[0] != "http://127.0.0.1:9200" || !es.Template {
		t.Errorf("defaults not applied: %+v", es)
	}
	in0, in1 := c.Inputs[0].(*PmacctInput), c.Inputs[1].(*PmacctInput)
	if in1.Pipeline != "default" || in0.Format != pmacct.Auto || in0.Timezone.Get() != time.Local {
		t.Errorf("input defaults: %+v %+v", in0, in1)
	}
}

// The TLS and API key settings of an elasticsearch output; certificates are
// verified unless told otherwise.
func TestParseTLSAndAPIKey(t *testing.T) {
	c, err := Parse("flowdex.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if es := c.Outputs["es"].(*ElasticsearchOutput); es.InsecureSkipVerify || es.CACert != "" || es.APIKey != "" {
		t.Errorf("defaults: %+v", es)
	}
	src := good + "ca_cert = \"ca.pem\"\napi_key_env = \"FLOWDEX_ES_API_KEY\"\ntls_insecure_skip_verify = true\n"
	if c, err = Parse("flowdex.toml", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if es := c.Outputs["es"].(*ElasticsearchOutput); es.CACert != absolute("ca.pem") || es.APIKeyEnv != "FLOWDEX_ES_API_KEY" || !es.InsecureSkipVerify {
		t.Errorf("keys not read: %+v", es)
	}
	src = good + "api_key_file = \"key\"\n"
	if c, err = Parse("flowdex.toml", []byte(src)); err != nil || c.Outputs["es"].(*ElasticsearchOutput).APIKeyFile != absolute("key") {
		t.Errorf("api_key_file: %v", err)
	}
}

// Every mistake is reported at its line and column, with what was expected.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the whole message
	}{
		{"syntax", "[log]\nlevel = \"info\n", `flowdex.toml:2:14: log.level: strings cannot contain newlines`},
		{"unknown key with suggestion", "[[input]]\ntype = \"pmacct\"\nfiel = \"x\"\n", "flowdex.toml:1:1: input#0.file: missing (expected a path, or \"-\" for standard input)\n" +
			`flowdex.toml:3:1: input#0.fiel: unknown key (did you mean "file"?)`},
		{"bad level", "[log]\nlevel = \"loud\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:1: log.level: unknown level "loud" (expected debug, info, warn or error)`},
		{"no input", "[log]\nlevel = \"info\"\n", `flowdex.toml: no [[input]] (expected at least one, e.g. type = "pmacct")`},
		{"second input bad type", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n\n[[input]]\n  type = \"netflw\"\n", `flowdex.toml:6:3: input#1.type: unknown input type "netflw" (expected "pmacct", "kafka", "netflow", "sflow" or "pcap")`},
		{"bad listen", "[[input]]\ntype = \"netflow\"\nlisten = [\"localhost:2055\"]\n", `flowdex.toml:3:1: input#0.listen: "localhost:2055": the host is not an IP address (expected e.g. "0.0.0.0:2100" or "[::]:2100")`},
		{"unknown primitive", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\naggregate = [\"src_hots\"]\n", `flowdex.toml:4:1: pipeline#0.aggregate: unknown primitive "src_hots" (did you mean "src_host"?)`},
		{"bad history", "[[input]]\ntype = \"sflow\"\n[[pipeline]]\nhistory = \"5x\"\n", `flowdex.toml:4:1: pipeline#0.history: "5x" is not a bin length (expected a number followed by s, m, h, d, w or M, e.g. "1m", "5m" or "1M")`},
		{"bad filter", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nfilter = \"tcp port http2x\"\n", `flowdex.toml:4:1: pipeline#0.filter: aggregate filter "tcp port http2x": libpcap: unknown port 'http2x'`},
		{"replay delay without replay", "[[input]]\ntype = \"netflow\"\nreplay_delay = \"30s\"\n", `flowdex.toml:3:1: input#0.replay_delay: without replay (it delays a replay's start)`},
		{"negative replay delay", "[[input]]\ntype = \"netflow\"\nreplay = \"x.pcap\"\nreplay_delay = \"-1s\"\n", `flowdex.toml:4:17: input#0.replay_delay: invalid duration "-1s" (expected e.g. "30s", "5m", "1h" or "30d")`},
		{"negative template store bound", "[[input]]\ntype = \"netflow\"\ntemplates_max_bytes = -1\n", `flowdex.toml:3:1: input#0.templates_max_bytes: -1 is negative (expected bytes, 0 for the default 134217728)`},
		{"sampling without rate", "[[input]]\ntype = \"netflow\"\n[[input.sampling]]\nexporters = \"192.0.2.0/24\"\n", `flowdex.toml:3:1: input#0.sampling#0.rate: missing rate (expected 1 or more: one packet in rate was sampled)`},
		{"pmacct records into an aggregating pipeline", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\naggregate = [\"src_host\"]\n", `flowdex.toml:1:1: input#0.pipeline: pipeline "pipeline1" aggregates flows, and pmacct records are aggregated already (expected a pipeline without aggregate)`},
		{"bad format", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\nformat = \"xml\"\n", `flowdex.toml:4:11: input#0.format: unknown format "xml" (expected json, csv or auto)`},
		{"flows into a pmacct pipeline", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\npipeline = \"p\"\n[[input]]\ntype = \"netflow\"\npipelines = [\"p\"]\n[[pipeline]]\nname = \"p\"\n",
			`flowdex.toml:7:1: input#1.pipelines: pipeline "p" takes the pmacct records of input "input1" (expected a pipeline of its own for flows)`},
		{"bad duration", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nflush_interval = \"soon\"\n", `flowdex.toml:6:19: output.es.flush_interval: invalid duration "soon" (expected e.g. "30s", "5m", "1h" or "30d")`},
		{"bad output type", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.x]\ntype = \"amqp\"\n", `flowdex.toml:5:1: output.x.type: unknown output type "amqp" (expected "elasticsearch", "kafka" or "print")`},
		{"kafka topic with $post_tag", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.k]\ntype = \"kafka\"\ntopic = \"acct.$post_tag\"\n",
			`flowdex.toml:6:1: output.k.topic: "acct.$post_tag": $post_tag: pmacct's post_tag, which flowdex does not have yet (expected one of $peer_src_ip, $src_host, $dst_host, $src_port, $dst_port, $proto, $in_iface, $tag, $tag2)`},
		{"kafka partition key", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.k]\ntype = \"kafka\"\n  partition_key = \"$peer_ip\"\n",
			`flowdex.toml:6:3: output.k.partition_key: "$peer_ip": unknown variable $peer_ip (expected one of $peer_src_ip, $src_host, $dst_host, $src_port, $dst_port, $proto, $in_iface, $tag, $tag2)`},
		{"kafka sasl", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.k]\ntype = \"kafka\"\nsasl = \"plain\"\nusername = \"u\"\n",
			`flowdex.toml:4:1: output.k.password: SASL plain needs a password (password, password_file or password_env)`},
		{"kafka input without topics", "[[input]]\ntype = \"kafka\"\nbrokers = [\"127.0.0.1:9092\"]\n", `flowdex.toml:1:1: input#0.topics: no topic (expected e.g. ["pmacct.acct"])`},
		{"kafka input session timeout", "[[input]]\ntype = \"kafka\"\ntopics = [\"pmacct.acct\"]\n  session_timeout = \"100ms\"\n",
			`flowdex.toml:4:3: input#0.session_timeout: 100ms: expected a duration of 1s or more (the brokers' group.min.session.timeout.ms is 6s by default)`},
		{"kafka input max_poll_records", "[[input]]\ntype = \"kafka\"\ntopics = [\"pmacct.acct\"]\nmax_poll_records = -1\n", `flowdex.toml:4:1: input#0.max_poll_records: -1: expected 0 (a fetch) or a positive number, e.g. 10000`},
		{"kafka input sasl", "[[input]]\ntype = \"kafka\"\ntopics = [\"pmacct.acct\"]\nsasl = \"scram-sha-256\"\nusername = \"u\"\n",
			`flowdex.toml:1:1: input#0.password: SASL scram-sha-256 needs a password (password, password_file or password_env)`},
		{"kafka input broker with a scheme", "[[input]]\ntype = \"kafka\"\nbrokers = [\"ssl://kafka1:9093\"]\ntopics = [\"pmacct.acct\"]\n",
			`flowdex.toml:3:1: input#0.brokers: "ssl://kafka1:9093": a broker is host:port, without a scheme (expected e.g. "127.0.0.1:9092"; tls = true for TLS)`},
		{"kafka input format", "[[input]]\ntype = \"kafka\"\ntopics = [\"pmacct.acct\"]\nformat = \"avro\"\n", `flowdex.toml:4:1: input#0.format: "avro": expected "json" (pmacct's kafka plugin output)`},
		{"unknown output", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\noutputs = [\"es\"]\n[output.stdout]\ntype = \"print\"\n", `flowdex.toml:5:1: pipeline#0.outputs: unknown output "es" (expected one of the [output.NAME] tables: stdout)`},
		{"wrong type", "[[input]]\ntype = \"pmacct\"\nfile = 5\n", `flowdex.toml:3:1: input#0.file: got a number, expected a string`},
		{"bad timezone", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\ntimezone = \"Mars/Base\"\n", `flowdex.toml:4:13: input#0.timezone: unknown time zone "Mars/Base" (expected Local, UTC or a name such as Europe/Rome)`},
		{"output twice", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\noutputs = [\"o\", \"o\"]\n[output.o]\ntype = \"print\"\n", `flowdex.toml:5:1: pipeline#0.outputs: output "o" listed twice`},
		{"one print file twice", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.a]\ntype = \"print\"\n[output.b]\ntype = \"print\"\n", `flowdex.toml:6:1: output.b.file: outputs "a" and "b" both print to "-"`},
		{"one spool_dir twice", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.a]\ntype = \"elasticsearch\"\nspool_dir = \"/var/lib/flowdex/spool\"\n[output.b]\ntype = \"elasticsearch\"\n  spool_dir = \"/var/lib/flowdex/./spool/\"\n",
			`flowdex.toml:9:3: output.b.spool_dir: outputs "a" and "b" both spool to "/var/lib/flowdex/spool" (expected a spool_dir of its own for each)`},
		{"one spool_dir for kafka and elasticsearch", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.a]\ntype = \"elasticsearch\"\nspool_dir = \"/var/lib/flowdex/spool\"\n[output.k]\ntype = \"kafka\"\nspool_dir = \"/var/lib/flowdex/spool\"\n",
			`flowdex.toml:9:1: output.k.spool_dir: outputs "a" and "k" both spool to "/var/lib/flowdex/spool" (expected a spool_dir of its own for each)`},
		{"one dead_letter_file twice", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.a]\ntype = \"elasticsearch\"\ndead_letter_file = \"/var/lib/flowdex/dead.ndjson\"\n[output.b]\ntype = \"elasticsearch\"\ndead_letter_file = \"/var/lib/flowdex/../flowdex/dead.ndjson\"\n",
			`flowdex.toml:9:1: output.b.dead_letter_file: outputs "a" and "b" both dead-letter to "/var/lib/flowdex/dead.ndjson" (expected a dead_letter_file of its own for each)`},
		{"ext sampling on netflow", "[[input]]\ntype = \"netflow\"\next_sampling_rate = 10\n", `flowdex.toml:3:1: input#0.ext_sampling_rate: ext_sampling_rate is for pcap inputs (expected [[input.sampling]] to set an exporter's rate)`},
		{"sampling_rate on a netflow pipeline", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nsampling_rate = 10\n", `flowdex.toml:1:1: input#0.pipelines: pipeline "pipeline1" samples packets (sampling_rate), and flows from exporters are sampled by them (expected sampling_rate only on pipelines fed by pcap inputs)`},
		{"net_source file without a file", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nnet_source = \"longest\"\n",
			`flowdex.toml:4:1: pipeline#0.net_source: "longest" needs the pipeline's networks_file`},
		{"as_source mask", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nas_source = \"mask\"\nnetworks_mask = 24\n",
			`flowdex.toml:4:1: pipeline#0.as_source: "mask": masks make no AS numbers (expected netflow, sflow, file, longest or bgp)`},
		{"net_source bgp without a table", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nnet_source = \"bgp\"\n",
			`flowdex.toml:4:1: pipeline#0.net_source: "bgp" needs a [bgp] or [bmp] table (pmacct's bgp_daemon or bmp_daemon)`},
		{"net_source mask without a mask", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nnet_source = \"mask\"\n",
			`flowdex.toml:4:1: pipeline#0.net_source: "mask" needs networks_mask (1 to 128)`},
		{"filter without a file", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nnetworks_file_filter = true\n",
			`flowdex.toml:4:1: pipeline#0.networks_file_filter: networks_file_filter without networks_file`},
		{"formatted label", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\naggregate = [\"label\"]\n[output.f]\ntype = \"print\"\nfile = \"x.txt\"\nformat = \"formatted\"\n",
			`flowdex.toml:8:1: output.f.format: pipeline "pipeline1" aggregates on label, of variable length, which pmacct's formatted table cannot hold (expected csv or json)`},
		{"class from sFlow", "[[input]]\ntype = \"sflow\"\n[[pipeline]]\naggregate = [\"class\"]\n",
			`flowdex.toml:1:1: input#0.pipelines: pipeline "pipeline1" aggregates on class, which flowdex takes from NetFlow/IPFIX application ids only (sfacctd and pmacctd take it from nDPI, which flowdex does not have; they refuse it without)`},
		{"GeoIP primitive without a database", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\naggregate = [\"dst_host_coords\"]\n",
			`flowdex.toml:4:1: pipeline#0.aggregate: dst_host_coords: a GeoIP primitive, which needs the pipeline's geoip_database (pmacct's geoipv2_file; without it pmacct writes "" or 0.0 in every record)`},
		{"capture AS", "[[input]]\ntype = \"pcap\"\ninterface = \"lo\"\n[[pipeline]]\naggregate = [\"sum_as\"]\n",
			`flowdex.toml:1:1: input#0.pipelines: pipeline "pipeline1" aggregates on src_as, which a capture gets only from a networks_file: it would be 0 in every record (pmacctd refuses to start too; expected networks_file in the pipeline)`},
		{"capture masks", "[[input]]\ntype = \"pcap\"\ninterface = \"lo\"\n[[pipeline]]\naggregate = [\"dst_mask\"]\n",
			`flowdex.toml:1:1: input#0.pipelines: pipeline "pipeline1" aggregates on dst_mask, which a capture gets only from a networks_file: it would be 0 in every record (pmacctd refuses to start too; expected networks_file in the pipeline)`},
		{"both samplings", "[[input]]\ntype = \"pcap\"\ninterface = \"lo\"\next_sampling_rate = 10\n[[pipeline]]\nsampling_rate = 10\n", `flowdex.toml:4:1: input#0.ext_sampling_rate: pipeline "pipeline1" samples the packets again (sampling_rate); pmacctd refuses both together (expected one of them)`},
		{"bad exporter prefix", "[[input]]\ntype = \"sflow\"\nexporters = [\"192.0.2.0/33\"]\n", `flowdex.toml:3:14: input#0.exporters: "192.0.2.0/33" is not a prefix (expected e.g. "192.0.2.0/24" or "2001:db8::/32")`},
		{"two api keys", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\napi_key = \"k\"\napi_key_env = \"K\"\n", `flowdex.toml:6:1: output.es.api_key: give one of api_key, api_key_file and api_key_env`},
		{"api key and user", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nusername = \"u\"\napi_key_file = \"k\"\n", `flowdex.toml:4:1: output.es.api_key: an API key and a username/password: give one way to authenticate`},
		{"api key and password", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\npassword_env = \"P\"\napi_key = \"k\"\n", "flowdex.toml:4:1: output.es.password: a password without a username (expected username too)\n" +
			`flowdex.toml:7:1: output.es.api_key: an API key and a username/password: give one way to authenticate`},
		{"start timeout zero", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nstart_timeout = \"0s\"\n", `flowdex.toml:6:1: output.es.start_timeout: 0s: expected a positive duration, e.g. "1m"`},
		{"discover interval too short", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\ndiscover_nodes = true\n  discover_interval = \"100ms\"\n", `flowdex.toml:7:3: output.es.discover_interval: 100ms: expected 1s or more, e.g. "5m"`},
		{"discover nodes not a bool", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\ndiscover_nodes = \"yes\"\n", `flowdex.toml:6:1: output.es.discover_nodes: got a string, expected true or false`},
		{"skip verify not a bool", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\ntls_insecure_skip_verify = \"yes\"\n", `flowdex.toml:6:1: output.es.tls_insecure_skip_verify: got a string, expected true or false`},
		{"http listen without port", "[http]\nlisten = \"127.0.0.1\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:1: http.listen: "127.0.0.1" is not a host and port (expected e.g. "127.0.0.1:8090", or "[::1]:8090")`},
		{"http listen port not a number", "[http]\nlisten = \"127.0.0.1:http\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:1: http.listen: "127.0.0.1:http" is not a host and port (expected e.g. "127.0.0.1:8090", or "[::1]:8090")`},
		{"http unknown key", "[http]\nlisen = \":8090\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:1: http.lisen: unknown key (did you mean "listen"?)`},
		{"web output not elasticsearch", "[http]\nweb_output = \"stdout\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.stdout]\ntype = \"print\"\n", `flowdex.toml:2:1: http.web_output: "stdout" is not an elasticsearch output (expected one of the [output.NAME] tables with type = "elasticsearch")`},
		{"allowed host with a port", "[http]\nallowed_hosts = [\"flowdex.example.net\", \"flowdex.example.net:8090\"]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n",
			`flowdex.toml:2:1: http.allowed_hosts: "flowdex.example.net:8090" is not a host name (expected a name such as "flowdex.example.net", without scheme nor port, or "*" for any)`},
		{"allowed host a URL", "[http]\nallowed_hosts = [\"http://flowdex.example.net\"]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n",
			`flowdex.toml:2:1: http.allowed_hosts: "http://flowdex.example.net" is not a host name (expected a name such as "flowdex.example.net", without scheme nor port, or "*" for any)`},
		{"follow stdin", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\nfollow = true\n", `flowdex.toml:4:1: input#0.follow: cannot follow standard input (expected a file path)`},
		{"bgp primitive without bgp", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\naggregate = [\"src_host\", \"as_path\"]\n",
			`flowdex.toml:1:1: input#0.pipelines: pipeline "pipeline1" aggregates on as_path, which comes from the routers' BGP routes (expected a [bgp] or [bmp] table, pmacct's bgp_daemon or bmp_daemon)`},
		{"as_source bgp without bgp", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\nas_source = \"bgp\"\n", `flowdex.toml:4:1: pipeline#0.as_source: "bgp" needs a [bgp] or [bmp] table (pmacct's bgp_daemon or bmp_daemon)`},
		{"bgp_agent_map without bgp", "[[input]]\ntype = \"netflow\"\nbgp_agent_map = \"agents.map\"\n", `flowdex.toml:3:1: input#0.bgp_agent_map: a map of exporters to BGP peers or BMP routers, and there is no [bgp] nor [bmp] table (expected one, pmacct's bgp_daemon or bmp_daemon)`},
		{"bad community pattern", "[bgp]\nasn = 64500\nstd_comm_patterns = [\"64500:1\", \"6_5\"]\n[[bgp.peer]]\nprefix = \"192.0.2.0/24\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n",
			`flowdex.toml:3:1: bgp.std_comm_patterns: "6_5": expected the beginning of a community's text, '.' for any character (e.g. "64500:1..")`},
		{"negative as path radius", "[bmp]\nrouters = [\"192.0.2.0/24\"]\nas_path_radius = -2\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n",
			`flowdex.toml:3:1: bmp.as_path_radius: -2 is negative (expected 0 for whole paths, or a number of hops)`},
		{"peer_src_as_source file", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\npeer_src_as_source = \"file\"\n",
			`flowdex.toml:4:1: pipeline#0.peer_src_as_source: "file" (expected netflow, sflow or bgp, as pmacct's bgp_peer_src_as_type; its map is not there)`},
		{"peer_src_as_source bgp without a table", "[[input]]\ntype = \"netflow\"\n[[pipeline]]\npeer_src_as_source = \"bgp\"\n",
			`flowdex.toml:4:1: pipeline#0.peer_src_as_source: "bgp" needs a [bgp] or [bmp] table (pmacct's bgp_daemon or bmp_daemon)`},
		{"bgp without asn", "[bgp]\n[[bgp.peer]]\nprefix = \"192.0.2.0/24\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:1:1: bgp.asn: missing (expected flowdex's AS number, from 1 to 4294967295)`},
		{"bgp without peers", "[bgp]\nasn = 64500\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:1:1: bgp.peer: none may peer (expected at least one [[bgp.peer]] with a prefix)`},
		{"bgp bad router id", "[bgp]\nasn = 64500\nrouter_id = \"::1\"\n[[bgp.peer]]\nprefix = \"192.0.2.0/24\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:3:1: bgp.router_id: "::1" is not an IPv4 address (expected a BGP identifier such as "192.0.2.1")`},
		{"bgp peer without prefix", "[bgp]\nasn = 64500\n[[bgp.peer]]\nasn = 64501\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:3:1: bgp.peer#0.prefix: missing (expected the peers' addresses, e.g. "192.0.2.0/24")`},
		{"bmp without routers", "[bmp]\nlisten = \"127.0.0.1:1790\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:1:1: bmp.routers: none may connect (expected the routers' addresses, e.g. ["192.0.2.0/24"])`},
		{"bmp bad policy", "[bmp]\nrouters = [\"192.0.2.0/24\"]\npolicy = \"both\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:3:1: bmp.policy: "both" (expected "post", post-policy Adj-RIB-In, or "pre")`},
		{"bmp bad listen", "[bmp]\nlisten = \"1790\"\nrouters = [\"192.0.2.0/24\"]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:1: bmp.listen: "1790" is not a host and port (expected e.g. "0.0.0.0:1790")`},
		{"bmp bad router prefix", "[bmp]\nrouters = [\"192.0.2.300/24\"]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:2:12: bmp.routers: "192.0.2.300/24" is not a prefix (expected e.g. "192.0.2.0/24" or "2001:db8::/32")`},
		{"bmp unknown key", "[bmp]\nrouters = [\"192.0.2.0/24\"]\nrouter = [\"192.0.2.0/24\"]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:3:1: bmp.router: unknown key (did you mean "routers"?)`},
		{"bgp unknown peer key", "[bgp]\nasn = 64500\n[[bgp.peer]]\nprefix = \"192.0.2.0/24\"\nmax_prefix = 10\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", `flowdex.toml:5:1: bgp.peer#0.max_prefix: unknown key (did you mean "max_prefixes"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("flowdex.toml", []byte(tt.src))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a config.Error", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

// No [http] table serves nothing; an empty one serves on loopback.
func TestHTTPListen(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", ""},
		{"[http]\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", "127.0.0.1:8090"},
		{"[http]\nlisten = \"[::]:9100\"\n[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n", "[::]:9100"},
	} {
		c, err := Parse("flowdex.toml", []byte(tt.src))
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTP.Listen != tt.want {
			t.Errorf("%q: listen %q, want %q", tt.src, c.HTTP.Listen, tt.want)
		}
	}
	// the web view reads the first elasticsearch output by name, unless
	// told; it is on by itself only on a loopback address
	for _, tt := range []struct{ http, want string }{
		{"[http]\n", "b"},
		{"[http]\nweb_output = \"c\"\n", "c"},
		{"[http]\nweb = false\n", ""},
		{"[http]\nlisten = \"[::1]:8090\"\n", "b"},
		{"[http]\nlisten = \"localhost:8090\"\n", "b"},
		{"[http]\nlisten = \"0.0.0.0:8090\"\n", ""},
		{"[http]\nlisten = \"[::]:8090\"\n", ""},
		{"[http]\nlisten = \"192.0.2.1:8090\"\nweb_output = \"c\"\n", ""},
		{"[http]\nlisten = \"0.0.0.0:8090\"\nweb = true\n", "b"},
	} {
		// outputs 0 and 1 come first by name, but their indices have no prefix to search by
		src := tt.http + "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.a]\ntype = \"print\"\n[output.c]\ntype = \"elasticsearch\"\n[output.b]\ntype = \"elasticsearch\"\n" +
			"[output.0]\ntype = \"elasticsearch\"\nindex = \"%Y-flows\"\ntemplate = false\n" +
			"[output.1]\ntype = \"elasticsearch\"\nindex = \".%Y\"\ntemplate = false\n"
		c, err := Parse("flowdex.toml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		served := ""
		if *c.HTTP.Web {
			served = c.HTTP.WebOutput
		}
		if served != tt.want {
			t.Errorf("%q: web view of %q, want %q", tt.http, served, tt.want)
		}
	}
}

// allowed_hosts is in the effective configuration, empty when not given.
func TestHTTPAllowedHostsEffective(t *testing.T) {
	for src, want := range map[string]string{
		"[http]\n": "allowed_hosts = []",
		"[http]\nallowed_hosts = [\"flowdex.example.net\", \"*\"]\n": `allowed_hosts = ["flowdex.example.net", "*"]`,
	} {
		c, err := Parse("flowdex.toml", []byte(src+"[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := c.WriteEffective(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("%q: the effective configuration lacks %s:\n%s", src, want, b.String())
		}
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Inputs[0].(*PmacctInput).File != "-" || c.Outputs["stdout"].Common().Type != "print" || c.Pipelines[0].Outputs[0] != "stdout" {
		t.Fatalf("default config: %+v", c)
	}
}

func TestP2ES(t *testing.T) {
	src := `{
    "ES_IndexName": "netflow-%Y-%m-%d",
    "ES_URL": "http://127.0.0.1:9200/",
    "ES_Type": "flow",
    "ES_AuthType": "basic",
    "ES_UserName": "elastic",
    "ES_Password": "secret",
    "ES_FlushSize": "100",
    "ES_IndexTemplateFileName": "tpl.json",
    "InputFile": "/var/lib/pmacct/$PluginName.json",
    "InputFormat": "csv",
    "ReaderThreads": 4,
    "Trasnformations": [],
    "Transformations": [{"Conditions": [{"peer_ip_src": "192.0.2.1"}], "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"}]}]
}`
	p, err := ParseP2ES("/etc/p2es/plugin1.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "http://127.0.0.1:9200" || p.FlushSize != 100 || p.InputFile != "/var/lib/pmacct/plugin1.json" ||
		p.IndexTemplateFileName != "/etc/p2es/tpl.json" || p.ReaderThreads != 4 || !strings.HasPrefix(string(p.Transformations), "[{") {
		t.Fatalf("parsed %+v", p)
	}
	// $IndexName is rendered with the local time of the parse: the day of
	// before, or of after when the parse ran across midnight
	before := time.Now()
	idx, err := ParseP2ES("/etc/p2es/idx.conf", []byte(`{"ES_IndexName": "flows-%Y-%m-%d", "InputFile": "/var/lib/pmacct/$IndexName.json"}`))
	after := time.Now()
	want := func(at time.Time) string { return "/var/lib/pmacct/flows-" + at.Format("2006-01-02") + ".json" }
	if err != nil || idx.InputFile != want(before) && idx.InputFile != want(after) {
		t.Fatalf("$IndexName in InputFile: %q %v, want %q", idx.InputFile, err, want(before))
	}
	if len(p.Warnings) != 1 || p.Warnings[0] != `/etc/p2es/plugin1.conf:13:24: unknown key "Trasnformations", ignored as p2es does (did you mean "Transformations"?)` {
		t.Fatalf("warnings %q", p.Warnings)
	}
	c := p.Config()
	es := c.Outputs["es"].(*ElasticsearchOutput)
	if es.Username != "elastic" || es.Password != "secret" || es.FlushDocs != 100 || es.DocType != "flow" || c.Inputs[0].(*PmacctInput).Format != pmacct.CSV {
		t.Fatalf("config %+v", es)
	}
	data, source, _, err := c.Pipelines[0].TransformationsJSON(c)
	if err != nil || source != "/etc/p2es/plugin1.conf" || !strings.HasPrefix(string(data), "[{") {
		t.Fatalf("transformations %s %s %v", data, source, err)
	}
}

func TestP2ESErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		// the example of p2es's own CONFIGURATION.md has this mistake
		{"trailing comma", "{\n    \"ES_IndexName\": \"x\",\n    \"ES_URL\": \"http://localhost:9200\",\n}\n",
			"plugin.conf:3:38: invalid JSON: trailing comma before a closing bracket (JSON allows no comma after the last item; remove it)"},
		{"trailing comma in list", "{\"ES_IndexName\": \"x\", \"Transformations\": [{}, ]}",
			"plugin.conf:1:45: invalid JSON: trailing comma before a closing bracket (JSON allows no comma after the last item; remove it)"},
		{"missing quote", "{\n  \"ES_IndexName: \"x\"\n}", `plugin.conf:2:19: invalid JSON: invalid character 'x' after object key`},
		{"truncated", "{\"ES_IndexName\": \"x\"", "plugin.conf:1:21: invalid JSON: unexpected end of JSON input"},
		{"not an object", "[1]", "plugin.conf:1:1: expected a JSON object at the top, found array"},
		{"no index", "{\"ES_URL\": \"http://localhost:9200\"}", `plugin.conf: ES_IndexName: index name not provided (expected e.g. "netflow-%Y-%m-%d")`},
		{"flush size", "{\"ES_IndexName\": \"x\",\n \"ES_FlushSize\": \"many\"}", `plugin.conf:2:18: ES_FlushSize: expected an integer, found "many"`},
		{"digest", "{\"ES_IndexName\": \"x\", \"ES_AuthType\": \"digest\", \"ES_UserName\": \"u\", \"ES_Password\": \"p\"}", `plugin.conf:1:38: ES_AuthType: digest authentication is not supported: Elasticsearch accepts basic authentication (use "basic")`},
		{"basic without password", "{\"ES_IndexName\": \"x\", \"ES_AuthType\": \"basic\"}", `plugin.conf:1:38: ES_AuthType: basic authentication needs ES_UserName and ES_Password`},
		{"format", "{\"ES_IndexName\": \"x\", \"InputFormat\": \"xml\"}", `plugin.conf:1:38: InputFormat: unknown "xml" (expected "json" or "csv")`},
		{"transformations not a list", "{\"ES_IndexName\": \"x\", \"Transformations\": {}}", `plugin.conf:1:42: Transformations: expected a list, found {}`},
		// p2es ignores unknown keys: a misspelt required one is named
		{"misspelt index", "{\n  \"ES_URL\": \"http://localhost:9200\",\n  \"ES_IndexNme\": \"netflow-%Y\"\n}",
			`plugin.conf:3:18: ES_IndexName: missing; the file has "ES_IndexNme", a misspelling of it? (expected "ES_IndexName": "netflow-%Y-%m-%d")`},
		{"url without scheme", "{\"ES_IndexName\": \"x\", \"ES_URL\": \"127.0.0.1:9200\"}",
			`plugin.conf:1:33: ES_URL: "127.0.0.1:9200" has no scheme (expected http:// or https:// before the host, e.g. "http://127.0.0.1:9200")`},
		{"url without scheme, with a password", "{\"ES_IndexName\": \"x\", \"ES_URL\": \"elastic:secret@127.0.0.1:9200\"}",
			`plugin.conf:1:33: ES_URL: "xxxxx@127.0.0.1:9200" has no scheme (expected http:// or https:// before the host, e.g. "http://xxxxx@127.0.0.1:9200")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseP2ES("plugin.conf", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func FuzzParseP2ES(f *testing.F) {
	f.Add([]byte(`{"ES_IndexName": "x", "ES_FlushSize": 10, "Transformations": []}`))
	f.Add([]byte("{\n\"ES_IndexName\": \"x\",\n}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := ParseP2ES("plugin.conf", src)
		if err == nil {
			p.Config()
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error without a position type: %v", err)
		}
	})
}

func FuzzParseTOML(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Parse("flowdex.toml", src)
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error without a position type: %v", err)
		}
	})
}

// Flow inputs get pmacct's ports and feed the pipelines no pmacct input uses;
// aggregating pipelines get pmacct's refresh time.
func TestFlowDefaults(t *testing.T) {
	c, err := Parse("flowdex.toml", []byte(`
[[input]]
type = "pmacct"
file = "-"
pipeline = "json"
[[input]]
type = "netflow"
replay = ""
[[input]]
type = "sflow"
Replay = "exports.pcap"
[[pipeline]]
name = "json"
[[pipeline]]
name = "flows"
aggregate = ["sum_host"]
history = "5m"
`))
	if err != nil {
		t.Fatal(err)
	}
	// replay = "" is no replay: the input listens; keys are read whatever
	// their case, as the decoder does
	nf, sf := c.Inputs[1].(*NetFlowInput), c.Inputs[2].(*SFlowInput)
	if len(nf.Listen) != 1 || nf.Listen[0] != "0.0.0.0:2100" || nf.Sockets != 1 || nf.QueueSize != 4096 {
		t.Errorf("netflow defaults: %+v", nf)
	}
	if len(sf.Listen) != 0 || sf.Replay != absolute("exports.pcap") {
		t.Errorf("a replayed input listens: %+v", sf)
	}
	for _, in := range []FlowInput{nf, sf} {
		if p := in.Targets().Pipelines; len(p) != 1 || p[0] != "flows" {
			t.Errorf("%s feeds %v, want [flows]", in.Common().Name, p)
		}
	}
	if c.Pipelines[1].Refresh.Duration != time.Minute || c.Pipelines[0].Refresh.Duration != 0 {
		t.Errorf("refresh: %v %v", c.Pipelines[0].Refresh, c.Pipelines[1].Refresh)
	}
}

// Every mistake of a file is reported in one run, each at its place, in the
// order of the file.
func TestEveryErrorReported(t *testing.T) {
	src := `[log]
level = "loud"
[[input]]
type = "netflow"
listen = ["0.0.0.0"]
[[input.sampling]]
exporters = "192.0.2.0/24"
[[input]]
type = "pmacct"
fiel = "x.json"
pipeline = "records"
[[pipeline]]
name = "p"
aggregate = ["src_hots"]
history_roundoff = "q"
[[pipeline]]
name = "records"
[output.es]
type = "elasticsearch"
urls = ["127.0.0.1:9200"]
flush_docs = -5
`
	_, err := Parse("flowdex.toml", []byte(src))
	want := []string{
		`flowdex.toml:2:1: log.level: unknown level "loud" (expected debug, info, warn or error)`,
		`flowdex.toml:5:1: input#0.listen: "0.0.0.0" is not an address and port (expected e.g. "0.0.0.0:2100" or "[::]:2100")`,
		`flowdex.toml:6:1: input#0.sampling#0.rate: missing rate (expected 1 or more: one packet in rate was sampled)`,
		`flowdex.toml:8:1: input#1.file: missing (expected a path, or "-" for standard input)`,
		`flowdex.toml:10:1: input#1.fiel: unknown key (did you mean "file"?)`,
		`flowdex.toml:14:1: pipeline#0.aggregate: unknown primitive "src_hots" (did you mean "src_host"?)`,
		`flowdex.toml:15:1: pipeline#0.history_roundoff: unknown roundoff "q" (expected m, h, d, w or M, or several in turn such as "mh")`,
		`flowdex.toml:15:1: pipeline#0.history_roundoff: history_roundoff without history`,
		`flowdex.toml:20:1: output.es.urls: "127.0.0.1:9200" has no scheme (expected http:// or https:// before the host, e.g. "http://127.0.0.1:9200")`,
		`flowdex.toml:21:1: output.es.flush_docs: -5 is not a document count (expected -1 for no limit, or more)`,
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config.Errors", err)
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// check's effective configuration is what run uses: the defaults of every
// component (not zeros), only the keys of each input's and output's type,
// paths resolved, secrets hidden; read back, it is the same configuration.
func TestWriteEffective(t *testing.T) {
	src := `[[input]]
type = "netflow"
[[input]]
type = "pmacct"
file = "flows.json"
pipeline = "records"
[[pipeline]]
name = "flows"
aggregate = ["src_host", "dst_host"]
[[pipeline]]
name = "records"
[output.es]
type = "elasticsearch"
urls = ["http://elastic:secret@127.0.0.1:9200"]
api_key = "c2VjcmV0"
retention = "30d"
[output.print]
type = "print"
[output.kafka]
type = "kafka"
brokers = ["127.0.0.1"]
sasl = "scram-sha-512"
username = "flowdex"
password = "secret"
[bgp]
asn = 64500
[[bgp.peer]]
prefix = "192.0.2.0/24"
password = "bgp-secret"
`
	got := effective(t, src)
	if strings.Contains(got, "bgp-secret") || !strings.Contains(got, "[[bgp.peer]]") {
		t.Errorf("the BGP password shown, or the peers not:\n%s", got)
	}
	for _, want := range []string{
		`spool_max_bytes = 1073741824`, `request_timeout = "1m0s"`, `start_timeout = "1m0s"`, `discover_nodes = false`, `discover_interval = "5m0s"`, `retention = "30d"`, `retention_interval = "1h0m0s"`,
		`listen = ["0.0.0.0:2100"]`, `read_buffer = 8388608`, `queue = 4096`, `refresh = "1m0s"`,
		`file = "/etc/flowdex/flows.json"`, `format = "auto"`, `timezone = "Local"`, `poll = "1s"`,
		`flush_interval = "1s"`, `api_key = "********"`, `urls = ["http://elastic:xxxxx@127.0.0.1:9200"]`,
		`topic = "pmacct.acct"`, `partition_key = "$peer_src_ip"`, `password = "********"`, `max_buffered_records = 10000`, `stop_grace = "15s"`,
		`timestamp_fields = ["stamp_inserted", "timestamp_start", "timestamp_arrival"]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the effective configuration lacks %s:\n%s", want, got)
		}
	}
	// each table has its type's keys: no file on the netflow input, no
	// listen on the pmacct one
	inputs := strings.Split(got, "[[input]]")
	if len(inputs) != 3 || strings.Contains(inputs[1], "file =") || strings.Contains(inputs[1], "follow") ||
		strings.Contains(inputs[2], "listen") || strings.Contains(inputs[2], "templates_file") {
		t.Errorf("keys of another type:\n%s", got)
	}
	if strings.Contains(got, "secret") || strings.Contains(got, "c2VjcmV0") {
		t.Errorf("a secret is shown:\n%s", got)
	}
	// read back (secrets apart), it prints the same
	checkReadsBack(t, got)
}

// checkReadsBack checks that the effective configuration got reads back
// into a configuration whose effective configuration is got again.
func checkReadsBack(t *testing.T, got string) {
	t.Helper()
	if again := effective(t, got); again != got {
		t.Errorf("read back, it differs:\n%s\nfirst:\n%s", again, got)
	}
}

// effective is the effective configuration of src, read as
// /etc/flowdex/flowdex.toml.
func effective(t *testing.T, src string) string {
	t.Helper()
	c, err := Parse("/etc/flowdex/flowdex.toml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	var b strings.Builder
	if err := c.WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A kafka input's effective configuration: the consumer's defaults, its
// dead-letter file resolved, its password hidden; read back, the same.
func TestWriteEffectiveKafkaInput(t *testing.T) {
	got := effective(t, `[[input]]
type = "kafka"
brokers = ["127.0.0.1:9092"]
topics = ["pmacct.acct"]
sasl = "scram-sha-256"
username = "flowdex"
password = "s3cret"
dead_letter_file = "dead.ndjson"
[output.print]
type = "print"
`)
	for _, want := range []string{
		`type = "kafka"`, `topics = ["pmacct.acct"]`, `group = "flowdex"`, `format = "json"`, `max_poll_records = 0`,
		`session_timeout = "45s"`, `sasl = "scram-sha-256"`, `username = "flowdex"`, `password = "********"`,
		`dead_letter_file = "/etc/flowdex/dead.ndjson"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the effective configuration lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("the password is shown:\n%s", got)
	}
	checkReadsBack(t, got)
}

// p2es reads a relative LookupTableFile from the working directory; the
// effective configuration names it absolutely, so that it reads back from
// any directory.
func TestWriteEffectiveP2ESLookupFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "peers.json"), []byte(`{"65000": "transit", "*": "other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	p, err := ParseP2ES("plugin.conf", []byte(`{"ES_IndexName": "flows", "Transformations": [{"Conditions": [{"peer_as_dst": "", "__op__": "!="}],
		"Actions": [{"Type": "AddFieldLookup", "Name": "peer", "LookupFieldName": "peer_as_dst", "LookupTableFile": "peers.json"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.Config().WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "peers.json")
	if !strings.Contains(b.String(), abs) {
		t.Fatalf("the effective configuration does not name %s:\n%s", abs, b.String())
	}
	t.Chdir(t.TempDir())
	c, err := Parse("effective.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("read back elsewhere: %v\n%s", err, b.String())
	}
	data, source, baseDir, err := c.Pipelines[0].TransformationsJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Parse(data, source, baseDir); err != nil {
		t.Errorf("read back elsewhere, the transformations do not compile: %v", err)
	}
}

// A value of the wrong type stops the decoder in its table only: the other
// tables are still checked, and the unknown keys of that one reported.
func TestDecodeMistakeHidesNothingElse(t *testing.T) {
	src := `[[input]]
type = "pmacct"
follow = "yes"
fiel = "x"
[output.es]
type = "elasticsearch"
flush_interval = 5
[output.p]
type = "print"
flush_interval = "0s"
`
	_, err := Parse("flowdex.toml", []byte(src))
	want := []string{
		`flowdex.toml:3:1: input#0.follow: got a string, expected true or false`,
		`flowdex.toml:4:1: input#0.fiel: unknown key (did you mean "file"?)`,
		`flowdex.toml:7:18: output.es.flush_interval: duration "5" has no unit (expected e.g. "5s", "5m" or "5d")`,
		`flowdex.toml:10:1: output.p.flush_interval: 0s: expected a positive duration, e.g. "1s"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

// aggregate_primitives defines the custom primitives the pipelines' aggregate
// lists name, relative to the configuration; its mistakes are said at its
// key, with the file's line and column.
func TestAggregatePrimitives(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("primitives.lst", "name=app_id field_type=95 len=4 semantics=u_int\n")
	write("bad.lst", "! x\nname=app_id field_type=95 len=3 semantics=u_int\n")
	conf := filepath.Join(dir, "flowdex.toml")
	const pipeline = "[[input]]\ntype = \"netflow\"\n[[pipeline]]\naggregate = [\"src_host\", \"app_id\"]\n"
	t.Cleanup(func() { _ = flow.DefineCustom(nil) })

	c, err := Parse(conf, []byte("aggregate_primitives = \"primitives.lst\"\n"+pipeline))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "primitives.lst"); c.AggregatePrimitives != want {
		t.Errorf("aggregate_primitives %q, want %q", c.AggregatePrimitives, want)
	}
	var b strings.Builder
	if err := c.WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	checkReadsBack(t, b.String())

	for _, tt := range []struct{ src, want string }{
		{pipeline, conf + `:4:1: pipeline#0.aggregate: unknown primitive "app_id"`},
		{"aggregate_primitives = \"bad.lst\"\n" + pipeline, conf + `:1:1: aggregate_primitives: ` + filepath.Join(dir, "bad.lst") + `:2:6: app_id: an integer of 1, 2, 4 or 8 bytes, not 3`},
		{"aggregate_primitives = 3\n" + pipeline, conf + `:1:1: aggregate_primitives: 3 is no file name (expected the path of pmacct's aggregate_primitives file, in quotes)`},
	} {
		_, err := Parse(conf, []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q:\n got %v\nwant %s", tt.src, err, tt.want)
		}
	}
}

// pre_tag_label_encode_as_map makes the Elasticsearch outputs of its
// pipelines map label as an object; pipelines writing label both ways into
// one output are refused.
func TestLabelMaps(t *testing.T) {
	const base = "[[input]]\ntype = \"netflow\"\n[output.es]\ntype = \"elasticsearch\"\n[output.es2]\ntype = \"elasticsearch\"\n"
	c, err := Parse("flowdex.toml", []byte(base+"[[pipeline]]\nname = \"a\"\naggregate = [\"label\"]\npre_tag_label_encode_as_map = true\noutputs = [\"es\"]\n[[pipeline]]\nname = \"b\"\naggregate = [\"label\"]\noutputs = [\"es2\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Outputs["es"].(*ElasticsearchOutput).LabelMaps || c.Outputs["es2"].(*ElasticsearchOutput).LabelMaps {
		t.Errorf("LabelMaps: es %v, es2 %v; want true, false", c.Outputs["es"].(*ElasticsearchOutput).LabelMaps, c.Outputs["es2"].(*ElasticsearchOutput).LabelMaps)
	}
	_, err = Parse("flowdex.toml", []byte(base+"[[pipeline]]\nname = \"a\"\naggregate = [\"label\"]\npre_tag_label_encode_as_map = true\noutputs = [\"es\"]\n[[pipeline]]\nname = \"b\"\naggregate = [\"label\"]\noutputs = [\"es\"]\n"))
	want := `flowdex.toml:12:1: pipeline#1.pre_tag_label_encode_as_map: pipelines "a" and "b" write label to output "es", one as a map and one as a string: one Elasticsearch field cannot be both (expected the same pre_tag_label_encode_as_map, or outputs of their own)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
