package main

// Running the real programs of the exporter golden tests: the exporters
// (softflowd, pmacctd's nfprobe and sfprobe) against a UDP socket of the test,
// whose datagrams are written into a pcap, and Debian's nfacctd and sfacctd on
// that pcap (pcap_savefile, like nfacctd -I).

import (
	"bufio"
	"bytes"
	"context"
	bin "encoding/binary" // binary is run_test.go's binary path
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// exportDatagram is one exported UDP datagram as the test received it.
type exportDatagram struct {
	at      time.Time
	src     netip.AddrPort
	dst     netip.AddrPort
	payload []byte
}

// ciRequired tells whether a missing tool fails the test instead of skipping it.
func ciRequired() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// missingTools returns the programs of names that are not on PATH.
func missingTools(names ...string) []string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}

// exportTimeout bounds one exporter run, and daemonTimeout one nfacctd or
// sfacctd run: both take a few seconds (pmacct sleeps 2 s before reading a
// savefile).
const (
	exportTimeout = 45 * time.Second
	daemonTimeout = 45 * time.Second
	// quiet is how long the socket must stay silent after the exporter has
	// exited before the capture ends: loopback delivers at once.
	quiet = 300 * time.Millisecond
)

// captureExport opens a UDP socket on 127.0.0.1, starts the exporter that
// command builds for its port, and returns every datagram that arrived until
// the exporter exited and the socket went quiet. relay, when valid, also gets
// each datagram, sent from the test's socket. The exporter's output is
// returned for diagnostics.
func captureExport(ctx context.Context, command func(port int) (*exec.Cmd, error), relay netip.AddrPort) ([]exportDatagram, string, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, "", fmt.Errorf("capture socket: %w", err)
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(8 << 20) // a burst of exports must not overflow the default buffer
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()

	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	cmd, err := command(int(local.Port()))
	if err != nil {
		return nil, "", err
	}
	var out testwatch.Log
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()

	var got []exportDatagram
	buf := make([]byte, 65536)
	done := false
	for {
		if err := conn.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			return nil, out.String(), err
		}
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil {
			d := exportDatagram{at: time.Now(), src: src, dst: local, payload: append([]byte(nil), buf[:n]...)}
			got = append(got, d)
			if relay.IsValid() {
				if _, err := conn.WriteToUDPAddrPort(d.payload, relay); err != nil {
					return nil, out.String(), fmt.Errorf("relaying to %s: %w", relay, err)
				}
			}
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, out.String(), fmt.Errorf("capture socket: %w", err)
		}
		if done {
			break
		}
		select {
		case <-exited:
			done = true // one more quiet period for datagrams still in flight
		case <-ctx.Done():
			return nil, out.String(), fmt.Errorf("%s did not finish in %v", filepath.Base(cmd.Path), exportTimeout)
		default:
		}
	}
	if len(got) == 0 {
		return nil, out.String(), fmt.Errorf("%s exported nothing", filepath.Base(cmd.Path))
	}
	return got, out.String(), nil
}

// pcap link type and the Ethernet, IPv4 and UDP headers put before each payload.
const (
	linkEthernet = 1
	frameHeader  = 14 + 20 + 8
)

// writeExportPcap writes datagrams as Ethernet/IPv4/UDP frames, timestamped
// with their arrival, which is what flowdex's replay and nfacctd's
// pcap_savefile read.
func writeExportPcap(path string, ds []exportDatagram) error {
	var b bytes.Buffer
	var hdr [24]byte
	bin.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	bin.LittleEndian.PutUint16(hdr[4:], 2)
	bin.LittleEndian.PutUint16(hdr[6:], 4)
	bin.LittleEndian.PutUint32(hdr[16:], 65535)
	bin.LittleEndian.PutUint32(hdr[20:], linkEthernet)
	b.Write(hdr[:])
	for _, d := range ds {
		frame := make([]byte, frameHeader+len(d.payload))
		copy(frame[0:], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
		ip := frame[14:34]
		ip[0] = 0x45
		bin.BigEndian.PutUint16(ip[2:], uint16(20+8+len(d.payload)))
		ip[8] = 64
		ip[9] = 17
		src, dst := d.src.Addr().As4(), d.dst.Addr().As4()
		copy(ip[12:], src[:])
		copy(ip[16:], dst[:])
		bin.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
		udp := frame[34:42]
		bin.BigEndian.PutUint16(udp[0:], d.src.Port())
		bin.BigEndian.PutUint16(udp[2:], d.dst.Port())
		bin.BigEndian.PutUint16(udp[4:], uint16(8+len(d.payload)))
		// checksum 0: none, which IPv4 allows; it keeps patched payloads valid
		copy(frame[frameHeader:], d.payload)
		var rec [16]byte
		bin.LittleEndian.PutUint32(rec[0:], uint32(d.at.Unix()))
		bin.LittleEndian.PutUint32(rec[4:], uint32(d.at.Nanosecond()/1000))
		bin.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		bin.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		b.Write(rec[:])
		b.Write(frame)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(bin.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// v9Shortfall is one NetFlow v9 datagram whose header count is below the
// number of FlowSets it carries.
type v9Shortfall struct {
	index, count, flowSets int
}

// fixV9Counts returns datagrams whose NetFlow v9 header count is raised to
// the number of FlowSets when it is lower, and the datagrams it changed.
//
// nfacctd 1.7.7 reads the v9 count as a number of FlowSets and stops there
// (process_v9_packet: "(flowsetCount + 1) < flowsetNo"), while RFC 3954 makes
// it the number of records; softflowd 1.1.0 counts only the data records, so
// a datagram with its templates and a few records loses its data in nfacctd.
// With the count raised, nfacctd reads every FlowSet, as flowdex does.
func fixV9Counts(ds []exportDatagram) ([]exportDatagram, []v9Shortfall) {
	var fixed []exportDatagram
	var short []v9Shortfall
	for i, d := range ds {
		p := d.payload
		if len(p) < 20 || bin.BigEndian.Uint16(p) != 9 {
			fixed = append(fixed, d)
			continue
		}
		count := int(bin.BigEndian.Uint16(p[2:]))
		sets := 0
		for off := 20; off+4 <= len(p); {
			l := int(bin.BigEndian.Uint16(p[off+2:]))
			if l < 4 || off+l > len(p) {
				break
			}
			sets++
			off += l
		}
		if sets > count {
			short = append(short, v9Shortfall{index: i, count: count, flowSets: sets})
			p = append([]byte(nil), p...)
			bin.BigEndian.PutUint16(p[2:], uint16(sets))
			d.payload = p
		}
		fixed = append(fixed, d)
	}
	return fixed, short
}

// pmacctPlugin is one print plugin of an nfacctd or sfacctd run.
type pmacctPlugin struct {
	name      string
	aggregate []string
	history   string // print_history, "" for none
	filter    string // aggregate_filter, "" for none
	secs      bool   // timestamps_secs
	file      string // print_output_file
	tagFilter string // pre_tag_filter, "" for none
	labelFilt string // pre_tag_label_filter, "" for none
	// mayBeEmpty: nothing to purge is an outcome, not a plugin that missed
	// the savefile
	mayBeEmpty bool
}

// pmacctRun is one nfacctd or sfacctd run over an export pcap.
type pmacctRun struct {
	daemon      string // nfacctd or sfacctd
	savefile    string
	networks    string // networks_file, with [ns]facctd_net and _as set to file
	renormalize bool
	samplingMap string // sampling_map
	pcapFilter  string // pcap_filter (pmacctd)
	extSampling int    // pmacctd_ext_sampling_rate
	preTagMap   string // pre_tag_map
	primitives  string // aggregate_primitives
	geoipv2     string // geoipv2_file
	extra       string // more lines of configuration
	plugins     []pmacctPlugin
}

func (r pmacctRun) config() string {
	prefix := r.daemon // nfacctd_renormalize, sfacctd_net, ...
	var b strings.Builder
	fmt.Fprintf(&b, "daemonize: false\npcap_savefile: %s\n", r.savefile)
	// naive UTC timestamps on both sides: the comparison does not depend on
	// the machine's time zone
	b.WriteString("timestamps_utc: true\nprint_output: json\nprint_refresh_time: 86400\nprint_cache_entries: 1024\n")
	fmt.Fprintf(&b, "%s_renormalize: %v\n", prefix, r.renormalize)
	if r.networks != "" {
		fmt.Fprintf(&b, "networks_file: %s\n%s_net: file\n%s_as: file\n", r.networks, prefix, prefix)
	}
	if r.samplingMap != "" {
		fmt.Fprintf(&b, "sampling_map: %s\n", r.samplingMap)
	}
	if r.pcapFilter != "" {
		fmt.Fprintf(&b, "pcap_filter: %s\n", r.pcapFilter)
	}
	if r.extSampling > 0 {
		fmt.Fprintf(&b, "pmacctd_ext_sampling_rate: %d\n", r.extSampling)
	}
	if r.preTagMap != "" {
		fmt.Fprintf(&b, "pre_tag_map: %s\n", r.preTagMap)
	}
	if r.primitives != "" {
		fmt.Fprintf(&b, "aggregate_primitives: %s\n", r.primitives)
	}
	if r.geoipv2 != "" {
		fmt.Fprintf(&b, "geoipv2_file: %s\n", r.geoipv2)
	}
	b.WriteString(r.extra)
	names := make([]string, len(r.plugins))
	for i, p := range r.plugins {
		names[i] = "print[" + p.name + "]"
	}
	fmt.Fprintf(&b, "plugins: %s\n", strings.Join(names, ", "))
	for _, p := range r.plugins {
		fmt.Fprintf(&b, "aggregate[%s]: %s\nprint_output_file[%s]: %s\n", p.name, strings.Join(p.aggregate, ", "), p.name, p.file)
		if p.history != "" {
			fmt.Fprintf(&b, "print_history[%s]: %s\n", p.name, p.history)
		}
		if p.filter != "" {
			fmt.Fprintf(&b, "aggregate_filter[%s]: %s\n", p.name, p.filter)
		}
		if p.secs {
			fmt.Fprintf(&b, "timestamps_secs[%s]: true\n", p.name)
		}
		if p.tagFilter != "" {
			fmt.Fprintf(&b, "pre_tag_filter[%s]: %s\n", p.name, p.tagFilter)
		}
		if p.labelFilt != "" {
			fmt.Fprintf(&b, "pre_tag_label_filter[%s]: %s\n", p.name, p.labelFilt)
		}
	}
	return b.String()
}

// pmacctSlots limits how many pmacct daemons run at once: many concurrent
// savefile runs make 1.7.7 lose plugins (collector/pmacct/testdata/README.md).
var pmacctSlots = make(chan struct{}, 6)

var purgeEndRE = regexp.MustCompile(`INFO \( ([^/]+)/print \): \*\*\* Purging cache - END \(PID: \d+, QN: (\d+)/(\d+)`)

// runPmacct runs the daemon on the savefile until it exits and its print
// writers (forked, they can outlive the core) have finished. A run where a
// plugin did not purge, or purged nothing when it should have had records, is
// tried again, up to three times: with a savefile, 1.7.7 sometimes ends
// before a plugin has started ("connection lost"), or a plugin gets none of
// the data. A plugin that purged nothing leaves no file: its output is empty.
func runPmacct(ctx context.Context, dir string, r pmacctRun) error {
	conf := filepath.Join(dir, r.daemon+"-"+r.plugins[0].name+".conf")
	if err := os.WriteFile(conf, []byte(r.config()), 0o644); err != nil {
		return err
	}
	pmacctSlots <- struct{}{}
	defer func() { <-pmacctSlots }()
	var log string
	for try := 1; try <= 3; try++ {
		for _, p := range r.plugins {
			_ = os.Remove(p.file)
		}
		cctx, cancel := context.WithTimeout(ctx, daemonTimeout)
		cmd := collectorCommand(exec.CommandContext(cctx, r.daemon, "-f", conf))
		var out bytes.Buffer
		// A buffer, not a file: Wait returns once every process holding the
		// pipe, the forked writers included, has closed it.
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 10 * time.Second
		err := cmd.Run()
		stopped := cctx.Err()
		cancel()
		log = out.String()
		_ = os.WriteFile(strings.TrimSuffix(conf, ".conf")+".log", out.Bytes(), 0o644) // kept for a failing test's reader
		if stopped != nil {
			return fmt.Errorf("%s did not finish in %v (%v):\n%s", r.daemon, daemonTimeout, stopped, tail(log, 30))
		}
		purged := map[string]int{} // plugin -> entries purged
		for _, m := range purgeEndRE.FindAllStringSubmatch(log, -1) {
			n, _ := strconv.Atoi(m[2])
			purged[m[1]] += n + 1
		}
		missing := 0
		for _, p := range r.plugins {
			if n := purged[p.name]; n == 0 || (n == 1 && !p.mayBeEmpty) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		_ = err // 1.7.7 exits 1 when it loses a plugin: the log tells more
	}
	return fmt.Errorf("%s -f %s: a print plugin purged nothing, in 3 runs; last log:\n%s", r.daemon, conf, tail(log, 30))
}

// tail returns the last n lines of s, without pmacct's long build line.
func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "--build=") {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readLines returns the lines of path; a missing file has none (a pmacct
// print plugin with nothing to purge writes no file).
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, sc.Text())
		}
	}
	return lines, sc.Err()
}
