#!/usr/bin/env bash
# Regenerates the pmacct samples under out/ with the pmacct installed on this
# machine (Debian's pmacct 1.7.7 when they were committed): see README.md.
#
#   collector/pmacct/testdata/generate.sh            # everything
#   collector/pmacct/testdata/generate.sh samples    # the samples only
#   collector/pmacct/testdata/generate.sh csvnames   # the CSV/JSON name table only
#
# Needs pmacctd, nfacctd and pmacct (Debian: apt-get install pmacct) and Go.
set -euo pipefail
cd "$(dirname "$0")"

for tool in pmacctd nfacctd pmacct go; do
	command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found" >&2; exit 1; }
done

# pmacct's default timestamps are naive local time: a zone off UTC makes the
# difference with timestamps_utc and timestamps_rfc3339 visible.
export TZ=Europe/Berlin
what=${1:-all}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_daemon DAEMON CONF OUTPUT...: runs a daemon on a savefile until it exits,
# then waits for its print plugins' writers to finish the files (they are forked
# and can outlive the core process). Retries a run that lost a plugin: with a
# savefile, 1.7.7 sometimes ends before a plugin has started ("connection lost").
run_daemon() {
	local daemon=$1 conf=$2
	shift 2
	local try
	for try in 1 2 3; do
		rm -f "$@"
		timeout 60 "$daemon" -f "$conf" >"$(logname "$conf")" 2>&1 || true
		local f ok=1
		for f in "$@"; do
			wait_file "$f" || ok=0
		done
		[ $ok = 1 ] && return 0
		echo "generate.sh: $conf: incomplete output, retrying" >&2
	done
	echo "generate.sh: $conf failed, see its log:" >&2
	grep -v -- --build "$(logname "$conf")" >&2
	return 1
}

logname() { echo "$work/$(echo "$1" | tr / _).log"; }

# wait_file F: true once F exists, is not empty and has stopped growing.
wait_file() {
	local f=$1 i last=-1 size
	for i in $(seq 1 20); do
		size=$(stat -c %s "$f" 2>/dev/null || echo 0)
		if [ "$size" -gt 0 ] && [ "$size" = "$last" ]; then
			return 0
		fi
		last=$size
		sleep 0.5
	done
	return 1
}

samples() {
	go run ./mkpcap traffic >traffic.pcap
	go run ./mkpcap netflow5 >netflow5.pcap
	mkdir -p out
	local c
	for c in print-default print-epoch print-rfc3339 print-utc print-numprotos print-tcpflags-array \
		print-markers print-label print-custom pair-pmacctd print-tab print-append; do
		case $c in
		pair-pmacctd) run_daemon pmacctd conf/$c.conf out/$c.csv out/$c.json & ;;
		print-tab) run_daemon pmacctd conf/$c.conf out/$c.csv & ;;
		print-append) run_daemon pmacctd conf/$c.conf out/$c.json out/$c.csv & ;;
		*) run_daemon pmacctd conf/$c.conf out/$c.json & ;;
		esac
	done
	run_daemon nfacctd conf/pair-nfacctd.conf out/pair-nfacctd.csv out/pair-nfacctd.json &
	memory_client &
	wait
	chmod 644 out/* # pmacct creates its files 0600
	# one purge per run: the print plugin writes nothing for an empty cache, so
	# every file above holds records
	ls -l out
}

# memory_client: the memory plugin with pcap_savefile_wait, read by the client.
memory_client() {
	local imt=$work/memory.pipe pid i
	sed "s|@IMT@|$imt|" conf/memory.conf >"$work/memory.conf"
	pmacctd -f "$work/memory.conf" >"$work/memory.log" 2>&1 &
	pid=$!
	# pmacctd sleeps 2 s before playing a savefile. Do not ask before the table is
	# loaded: a query while 1.7.7 loads it loses the rest of the savefile.
	sleep 5
	local prev=-1 cur
	for i in $(seq 1 10); do
		cur=$(pmacct -p "$imt" -s -O json | wc -l)
		[ "$cur" = "$prev" ] && break
		prev=$cur
		sleep 1
	done
	pmacct -p "$imt" -s -O json >out/memory-client.json
	pmacct -p "$imt" -s -O csv >out/memory-client.csv
	pmacct -p "$imt" -s -O json -e >out/memory-client-erase.json
	pmacct -p "$imt" -s -O json >out/memory-client-empty.json
	pmacct -p "$imt" -s -O csv >out/memory-client-empty.csv
	kill "$pid"
	wait "$pid" || true
	# what the client prints on stdout when the daemon is not there (exit status 1)
	pmacct -p /nonexistent/pmacct.pipe -s -O json >out/memory-client-error.txt || true
}

# csvnames: for every primitive pmacctd and nfacctd can print, one run with that
# primitive alone in CSV and in JSON; the CSV header names and JSON keys, paired
# in order, go to out/csvnames.txt.
csvnames() {
	go run ./mkpcap traffic >traffic.pcap
	go run ./mkpcap netflow5 >netflow5.pcap
	local here=$PWD
	local pm nf p
	pm=$(pmacctd -a 2>&1 | awk '/^[a-z_0-9]+ +:/{print $1}')
	nf=$(nfacctd -a 2>&1 | awk '/^[a-z_0-9]+ +:/{print $1}')
	{
		for p in $pm; do echo pmacctd "$p"; done
		for p in $nf; do echo "$pm" | grep -qx "$p" || echo nfacctd "$p"; done
	} >"$work/primitives"
	export -f run_daemon wait_file logname
	export work here
	# a few at a time: many concurrent savefile runs make pmacctd lose plugins
	xargs -P 4 -L 1 bash -c 'one_primitive "$@"' _ <"$work/primitives" 2>/dev/null || true
	{
		echo "# pmacct $(pmacctd -V 2>&1 | head -1 | sed 's/.*pmacctd //')"
		echo "# CSV header name, JSON key, primitive, daemon: see generate.sh (csvnames)"
		sort -k3,3 "$work"/names.* 2>/dev/null
		echo "# not printed (see README.md):$(cat "$work"/failed.* 2>/dev/null | sort | tr '\n' ' ')"
	} >out/csvnames.txt
	cat out/csvnames.txt
}

one_primitive() {
	local daemon=$1 p=$2 d=$work/prim-$1-$2
	mkdir -p "$d"
	local extra=""
	case $daemon in
	pmacctd) extra="pcap_savefile: $here/traffic.pcap
pmacctd_net: file
pmacctd_as: file
networks_file: $here/conf/networks.lst" ;;
	nfacctd) extra="pcap_savefile: $here/netflow5.pcap
nfacctd_as: netflow
nfacctd_net: netflow" ;;
	esac
	cat >"$d/conf" <<-EOF
		daemonize: false
		$extra
		plugins: print[c], print[j]
		aggregate: $p
		print_refresh_time: 60
		print_cache_entries: 1024
		print_output[c]: csv
		print_output_file[c]: $d/out.csv
		print_output[j]: json
		print_output_file[j]: $d/out.json
	EOF
	if ! run_daemon "$daemon" "$d/conf" "$d/out.csv" "$d/out.json" >/dev/null 2>&1; then
		echo "$p" >"$work/failed.$p"
		return 0
	fi
	if grep -q 'defaulting to SRC HOST' "$(logname "$d/conf")"; then
		echo "$p" >"$work/failed.$p" # not compiled in (class: no nDPI)
		return 0
	fi
	local csv json
	csv=$(head -1 "$d/out.csv" | tr ',' '\n' | grep -vx 'PACKETS\|FLOWS\|BYTES' || true)
	json=$(head -1 "$d/out.json" | grep -o '"[a-z_0-9]*": ' | tr -d '": ' | grep -vx 'event_type\|packets\|flows\|bytes' || true)
	# flows is a counter: CSV writes it between PACKETS and BYTES
	if [ "$p" = flows ]; then
		csv=FLOWS json=flows
	fi
	if [ "$(echo "$csv" | wc -l)" != "$(echo "$json" | wc -l)" ] || [ -z "$csv" ]; then
		echo "$p" >"$work/failed.$p"
		return 0
	fi
	paste -d ' ' <(echo "$csv") <(echo "$json") | sed "s/\$/ $p $daemon/" >"$work/names.$p"
}
export -f one_primitive

case $what in
all) samples; csvnames ;;
samples) samples ;;
csvnames) csvnames ;;
*) echo "usage: $0 [all|samples|csvnames]" >&2; exit 2 ;;
esac
