#!/usr/bin/env bash
# Regenerates the export captures of this directory: softflowd 1.1.0 and
# pmacctd's nfprobe (Debian's pmacct 1.7.7) read ../../pmacct/testdata/traffic.pcap
# and export its flows over loopback to mkexport, which writes each datagram
# it receives to a pcap as if captured from exporter 192.0.2.x.
#
#   collector/netflow/testdata/generate.sh
#
# Needs softflowd, pmacctd and Go. Export times are the wall clock of the run,
# so the files change at every run; the tests do not depend on them.
set -euo pipefail
cd "$(dirname "$0")"
for tool in softflowd pmacctd go; do
	command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found" >&2; exit 1; }
done

traffic=$(realpath ../../pmacct/testdata/traffic.pcap)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mkexport" ./mkexport

# capture OUT SRC CMD...: starts mkexport, then runs CMD, which finds the
# port mkexport listens on in $port, and waits for mkexport to have written
# every datagram.
capture() {
	local out=$1 src=$2
	shift 2
	rm -f "$work/port"
	"$work/mkexport" -out "$out" -src "$src" -idle 3s -max 60s >"$work/port" &
	local pid=$!
	until [ -s "$work/port" ]; do sleep 0.1; done
	port=$(cat "$work/port")
	"$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
	wait "$pid"
}

softflowd_run() {
	softflowd -r "$traffic" -n "127.0.0.1:$port" -d -p "$work/sf.pid" -c none "$@" # -c none: softflowd 1.1.0 may block on an uninitialised poll entry for its control socket when reading a file
}

capture softflowd-v5.pcap 192.0.2.1 softflowd_run -v 5
capture softflowd-v9.pcap 192.0.2.1 softflowd_run -v 9 -T ether
capture softflowd-ipfix.pcap 192.0.2.1 softflowd_run -v 10 -T ether
capture softflowd-ipfix-sampled.pcap 192.0.2.1 softflowd_run -v 10 -A milli -s 2
capture softflowd-ipfix-nano.pcap 192.0.2.1 softflowd_run -v 10 -A nano -b

# nfprobe: pmacctd_ext_sampling_rate declares 1-in-4 sampling, which nfprobe
# exports as a sampler option (ids 48/49/50) and a sampler id in each record.
nfprobe_run() {
	local version=$1 usec=$2
	cat >"$work/nfprobe.conf" <<CONF
daemonize: false
pcap_savefile: $traffic
plugins: nfprobe
nfprobe_receiver: 127.0.0.1:$port
nfprobe_version: $version
nfprobe_tstamp_usec: $usec
pmacctd_ext_sampling_rate: 4
nfprobe_timeouts: tcp=1:udp=1:icmp=1:general=1:maxlife=1:expint=1
CONF
	timeout 30 pmacctd -f "$work/nfprobe.conf"
}
capture nfprobe-v9.pcap 192.0.2.2 nfprobe_run 9 false
capture nfprobe-ipfix.pcap 192.0.2.2 nfprobe_run 10 true
