#!/usr/bin/env bash
# kafka.sh: a throwaway Apache Kafka (KRaft, no ZooKeeper) on 127.0.0.1, for
# flowdex's tests: one broker, or a cluster of three; plain, or with TLS and SASL.
#
#   kafka.sh fetch               download Kafka with Maven; prints its libs dir
#   kafka.sh start [BROKERS]     fetch if needed, start 1 (default) or 3 nodes,
#                                wait until each answers; prints the bootstrap servers
#   kafka.sh stop                stop every node of the instance
#   kafka.sh remove              kill a FLOWDEX_KAFKA_INSTANCE's nodes, delete its state dir
#   kafka.sh status              exit 0 if every node answers, 3 if none runs
#   kafka.sh url                 print the bootstrap servers (127.0.0.1:9092,...)
#   kafka.sh pid [N]             print the pid of node N (default: every node's, one a line)
#   kafka.sh stop-broker N       SIGTERM node N (1..BROKERS), wait until it has exited
#   kafka.sh kill-broker N       SIGKILL node N
#   kafka.sh start-broker N      start node N again on its data, wait until it answers
#   kafka.sh tool NAME [ARG...]  run one of Kafka's tools (kafka.sh tool list)
#   kafka.sh listeners           print every listener of every node, Kafka's way
#                                (PLAINTEXT://127.0.0.1:9092,...; with SASL_SSL and SSL ones
#                                when secure)
#   kafka.sh ca                  print the path of a secure instance's CA certificate (PEM)
#
# The jars are org.apache.kafka:kafka_2.13 and kafka-tools with their runtime
# dependencies from Maven Central (the registry this project can reach: no
# binary tarball), run with plain `java -cp 'libs/*' kafka.Kafka`. Each node
# is both broker and controller (KRaft combined mode) with a static quorum of
# every node; node N (from 1) listens on PORT+N-1 (PLAINTEXT) and
# CONTROLLER_PORT+N-1. With 3 nodes, topics default to replication factor 3
# and min.insync.replicas 2, so one node can be stopped without losing an
# acknowledged record. Topics are not created on first use
# (auto.create.topics.enable=false): a test names and makes its own.
#
# Secure mode (FLOWDEX_KAFKA_SECURE=1; an instance of its own, "secure" on
# port 9095 unless FLOWDEX_KAFKA_INSTANCE and FLOWDEX_KAFKA_PORT say
# otherwise): node N also listens with SASL_SSL on SASL_SSL_PORT+N-1
# (mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) and with SSL (TLS, no
# authentication) on SSL_PORT+N-1. Their certificate, for 127.0.0.1 and
# localhost, is signed by a CA that `start` makes with openssl (`kafka.sh ca`
# prints its path); the nodes read it as PEM (ssl.keystore.type=PEM, no
# keytool). Each mechanism has a user of its own, USER-plain,
# USER-scram-sha-256 and USER-scram-sha-512 (USER from FLOWDEX_KAFKA_SASL_USER),
# all with FLOWDEX_KAFKA_SASL_PASSWORD: one mechanism refuses the users of the
# others, so a client that speaks another mechanism than it was told fails.
# PLAIN's user is in the listener's JAAS config; SCRAM's are written into the
# cluster's metadata when the log dirs are formatted. PLAINTEXT stays, for the
# nodes between themselves and for the tests' own admin clients.
#
# Environment:
#   FLOWDEX_KAFKA_HOME     cache dir (default ~/.cache/flowdex/kafka; as root
#                          /var/cache/flowdex/kafka, which the Kafka user can enter)
#   FLOWDEX_KAFKA_VERSION  Kafka version (default below)
#   FLOWDEX_KAFKA_BROKERS  number of nodes `start` starts (default 1; its argument wins)
#   FLOWDEX_KAFKA_PORT     first node's PLAINTEXT port (default 9092)
#   FLOWDEX_KAFKA_CONTROLLER_PORT  first node's controller port (default PORT + 100)
#   FLOWDEX_KAFKA_HEAP     heap of one node, -Xms = -Xmx (default 256m)
#   FLOWDEX_KAFKA_TOOL_HEAP  heap of `tool` (default 512m)
#   FLOWDEX_KAFKA_JAVA_HOME  JDK (default: the oldest Java >= 17 in /usr/lib/jvm)
#   FLOWDEX_KAFKA_USER     user Kafka runs as when we are root (default flowdex-kafka)
#   FLOWDEX_KAFKA_KEEP_DATA  1 = keep the topics and logs of the previous run
#   FLOWDEX_KAFKA_INSTANCE a name: nodes of their own (state dir, ports from the
#                          variables above) beside the default ones, e.g. for a
#                          test that stops a broker
#   FLOWDEX_KAFKA_WAIT     seconds to wait for the nodes to answer (default 120)
#   FLOWDEX_KAFKA_SECURE   1 = secure mode (above): the instance defaults to
#                          "secure" and FLOWDEX_KAFKA_PORT to 9095
#   FLOWDEX_KAFKA_SASL_SSL_PORT  first node's SASL_SSL port (default PORT + 200)
#   FLOWDEX_KAFKA_SSL_PORT       first node's SSL port (default PORT + 300)
#   FLOWDEX_KAFKA_SASL_USER      prefix of the SASL users' names (default flowdex-test)
#   FLOWDEX_KAFKA_SASL_PASSWORD  their password (default: a fixed test password;
#                                8 or more letters, digits, '.', '_' and '-')
#
# Commands other than start take the ports, the number of nodes and the mode
# of the instance's last start (its cluster.env), not the variables; the
# secure instance is FLOWDEX_KAFKA_SECURE=1 (or FLOWDEX_KAFKA_INSTANCE=secure).
set -euo pipefail

readonly DEFAULT_VERSION=4.4.0 # newest 4.x on Maven Central
# Kafka logs through SLF4J 1.7 and ships no binding in its Maven artifacts:
# log4j's, of the log4j version Kafka 4.4 depends on.
readonly LOG4J_VERSION=2.25.5
# Test credentials of secure mode; kafkatest's secure.go has the same defaults.
readonly SASL_USER_DEFAULT=flowdex-test
readonly SASL_PASSWORD_DEFAULT=fdx-kafka-Pw-71c3e0b9a4d2

log() { echo "kafka.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

usage() {
	sed -n '2,20s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# ---------------------------------------------------------------------------
# Settings derived from the environment.

setup() {
	version=${FLOWDEX_KAFKA_VERSION:-$DEFAULT_VERSION}
	[[ $version =~ ^4\.[0-9]+\.[0-9]+$ ]] || die "bad FLOWDEX_KAFKA_VERSION '$version' (want 4.x.y: KRaft-only Kafka)"
	if [[ -n ${FLOWDEX_KAFKA_HOME:-} ]]; then
		cache=$FLOWDEX_KAFKA_HOME
	elif ((EUID == 0)); then
		cache=/var/cache/flowdex/kafka
	else
		cache=${HOME:?}/.cache/flowdex/kafka
	fi
	dist_dir=$cache/$version
	libs=$dist_dir/libs
	secure=${FLOWDEX_KAFKA_SECURE:-0}
	[[ $secure == [01] ]] || die "bad FLOWDEX_KAFKA_SECURE '$secure' (want 0 or 1)"
	local default_instance=default default_port=9092
	if ((secure)); then
		default_instance=secure default_port=9095
	fi
	instance=${FLOWDEX_KAFKA_INSTANCE:-$default_instance}
	[[ $instance =~ ^[a-z0-9-]+$ ]] || die "bad FLOWDEX_KAFKA_INSTANCE '$instance' (want lowercase letters, digits, -)"
	idir=$cache/instances/$instance
	cluster_env=$idir/cluster.env
	heap=${FLOWDEX_KAFKA_HEAP:-256m}
	tool_heap=${FLOWDEX_KAFKA_TOOL_HEAP:-512m}
	wait_secs=${FLOWDEX_KAFKA_WAIT:-120}
	brokers=${FLOWDEX_KAFKA_BROKERS:-1}
	port=${FLOWDEX_KAFKA_PORT:-$default_port}
	controller_port=${FLOWDEX_KAFKA_CONTROLLER_PORT:-$((port + 100))}
	sasl_ssl_port=${FLOWDEX_KAFKA_SASL_SSL_PORT:-$((port + 200))}
	ssl_port=${FLOWDEX_KAFKA_SSL_PORT:-$((port + 300))}
	ca_dir=$idir/ca
	sasl_user=${FLOWDEX_KAFKA_SASL_USER:-$SASL_USER_DEFAULT}
	sasl_password=${FLOWDEX_KAFKA_SASL_PASSWORD:-$SASL_PASSWORD_DEFAULT}
	# They go into a JAAS config and StorageTool's --add-scram syntax as is.
	[[ $sasl_user =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bad FLOWDEX_KAFKA_SASL_USER '$sasl_user' (letters, digits, '.', '_' and '-')"
	[[ $sasl_password =~ ^[A-Za-z0-9._-]{8,}$ ]] || die "bad FLOWDEX_KAFKA_SASL_PASSWORD (8 or more letters, digits, '.', '_' and '-')"
	label="Kafka $version"
	[[ $instance == default ]] || label+=" ($instance)"

	# Kafka runs as root if asked, but tests run as root here: keep the
	# broker away from root's rights, as es.sh does for Elasticsearch.
	run_as=()
	kafka_user=$(id -un)
	if ((EUID == 0)); then
		kafka_user=${FLOWDEX_KAFKA_USER:-flowdex-kafka}
		run_as=(setpriv --reuid="$kafka_user" --regid="$kafka_user" --init-groups)
	fi
}

# load_cluster: the number of nodes and ports of the instance's last start.
load_cluster() {
	[[ -s $cluster_env ]] || return 0
	local k v
	while IFS== read -r k v; do
		case $k in
		brokers) brokers=$v ;;
		port) port=$v ;;
		controller_port) controller_port=$v ;;
		secure) secure=$v ;;
		sasl_ssl_port) sasl_ssl_port=$v ;;
		ssl_port) ssl_port=$v ;;
		esac
	done <"$cluster_env"
}

check_brokers() {
	[[ $brokers =~ ^[1-9]$ ]] || die "bad number of brokers '$brokers' (want 1 to 9; 1 or 3 make sense)"
}

node_dir() { echo "$idir/node-$1"; }
bport() { echo $((port + $1 - 1)); }
cport() { echo $((controller_port + $1 - 1)); }
sport() { echo $((sasl_ssl_port + $1 - 1)); }
tport() { echo $((ssl_port + $1 - 1)); }

# listeners: every client listener of every node, Kafka's way.
listeners() {
	local n name out=""
	for name in PLAINTEXT SASL_SSL SSL; do
		[[ $name == PLAINTEXT ]] || ((secure)) || continue
		for ((n = 1; n <= brokers; n++)); do
			out+=${out:+,}$name://127.0.0.1:$(listener_port "$name" "$n")
		done
	done
	echo "$out"
}

listener_port() {
	case $1 in
	PLAINTEXT) bport "$2" ;;
	SASL_SSL) sport "$2" ;;
	SSL) tport "$2" ;;
	esac
}

bootstrap() {
	local n out=""
	for ((n = 1; n <= brokers; n++)); do
		out+=${out:+,}127.0.0.1:$(bport "$n")
	done
	echo "$out"
}

# node_arg N: N is a node of the instance.
node_arg() {
	[[ ${1:-} =~ ^[1-9]$ ]] && (($1 <= brokers)) || die "bad node '${1:-}' (want 1 to $brokers)"
}

# ---------------------------------------------------------------------------
# Probing and process bookkeeping.

# answers PORT: a Kafka broker on PORT answers an ApiVersions request (v0,
# correlation id 1) without error. The broker's listener processes requests
# only once the broker is registered and unfenced, so this is "up". Raw bytes
# over bash's /dev/tcp: no client needed.
answers() {
	local got
	# shellcheck disable=SC2016 # $0 expands in the inner bash
	got=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "\x00\x00\x00\x0d\x00\x12\x00\x00\x00\x00\x00\x01\x00\x03fdx" >&3
		head -c 10 <&3 | od -An -tx1' "$1" 2>/dev/null | tr -d ' \n') || return 1
	# size (4 bytes, any), correlation id 1, error code 0
	[[ ${got:8} == 000000010000 ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pidfile() { echo "$(node_dir "$1")/run/kafka.pid"; }

# alive N: node N's JVM runs (a recycled pid would not name its config).
alive() {
	local pid f
	f=$(pidfile "$1")
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
	grep -qaF "$(node_dir "$1")/config/server.properties" "/proc/$pid/cmdline" 2>/dev/null
}

pid_of() { cat "$(pidfile "$1")"; }

# Serialize the commands on one instance (also between kafka.sh processes).
# fd 9 must not leak into the JVMs, or they would hold the lock forever.
lock() {
	mkdir -p "$idir"
	exec 9>"$idir/.lock"
	flock -w 600 9 || die "timed out waiting for $idir/.lock"
}

# ---------------------------------------------------------------------------
# JDK and user

java_home() {
	if [[ -n ${FLOWDEX_KAFKA_JAVA_HOME:-} ]]; then
		[[ -x $FLOWDEX_KAFKA_JAVA_HOME/bin/java ]] || die "no bin/java in FLOWDEX_KAFKA_JAVA_HOME=$FLOWDEX_KAFKA_JAVA_HOME"
		echo "$FLOWDEX_KAFKA_JAVA_HOME"
		return
	fi
	# The oldest Java >= 17 (Kafka 4's brokers need 17): Debian's openjdk-17,
	# read from each JDK's release file rather than its dir name.
	local d v best="" best_v=0
	for d in /usr/lib/jvm/*/; do
		d=${d%/}
		[[ -L $d || ! -x $d/bin/java ]] && continue
		v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$d/release" 2>/dev/null)
		[[ -n $v ]] && ((v >= 17)) || continue
		if [[ -z $best ]] || ((v < best_v)); then
			best=$d best_v=$v
		fi
	done
	[[ -n $best ]] || die "no Java >= 17 in /usr/lib/jvm for Kafka 4 (apt-get install openjdk-17-jre-headless, or set FLOWDEX_KAFKA_JAVA_HOME)"
	echo "$best"
}

ensure_user() {
	((EUID == 0)) || return 0
	id -u "$kafka_user" >/dev/null 2>&1 && return 0
	log "creating system user $kafka_user"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$kafka_user"
}

# ---------------------------------------------------------------------------
# fetch

pom() {
	cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.flowdex</groupId>
  <artifactId>kafka-test-dist</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version>
      <exclusions>
        <!-- for the Connect plugin-path tool only: Jetty, Jersey and more -->
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

fetch() {
	ensure_user
	mkdir -p "$dist_dir"
	# fd 8: the distribution's lock, shared by every instance; closed again
	# so that it does not leak into the JVMs.
	exec 8>"$dist_dir/.lock"
	flock -w 600 8 || die "timed out waiting for $dist_dir/.lock"
	if [[ ! -s $libs/.complete ]]; then
		command -v mvn >/dev/null || die "mvn is needed to fetch Kafka (apt-get install maven)"
		local tmp=$dist_dir/.fetch.$$ out t0=$SECONDS
		rm -rf "$tmp"
		mkdir -p "$tmp"
		pom >"$tmp/pom.xml"
		log "fetching Kafka $version (kafka_2.13, kafka-tools and their dependencies) with Maven"
		# copy-dependencies resolves through the local repository (~/.m2,
		# kept between runs); its output is shown only on failure.
		if ! out=$(cd "$tmp" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
			-DoutputDirectory="$tmp/libs" </dev/null 2>&1); then
			printf '%s\n' "$out" >&2
			rm -rf "$tmp"
			die "mvn could not fetch Kafka $version (org.apache.kafka:kafka_2.13 and kafka-tools)"
		fi
		[[ -s $tmp/libs/kafka_2.13-$version.jar ]] || die "mvn fetched no kafka_2.13-$version.jar"
		echo "$version" >"$tmp/libs/.complete"
		rm -rf "$libs"
		# Renamed last, so a half-fetched dir is never taken for a good one.
		mv "$tmp/libs" "$libs"
		rm -rf "$tmp"
		log "fetched $(find "$libs" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
	fi
	# The tools log warnings only, to stderr.
	if [[ ! -s $dist_dir/tools-log4j2.properties ]]; then
		cat >"$dist_dir/tools-log4j2.properties" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
EOF
	fi
	chmod -R a+rX "$dist_dir"
	exec 8>&-
}

# ---------------------------------------------------------------------------
# Configuration of the nodes

# cluster_id: a random Kafka UUID (16 bytes, base64url without padding, not
# starting with '-'), without a JVM start for `StorageTool random-uuid`.
cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
		[[ $id == -* ]] || break
	done
	echo "$id"
}

# server_properties N
server_properties() {
	local n=$1 d i voters="" misr=1
	d=$(node_dir "$n")
	for ((i = 1; i <= brokers; i++)); do
		voters+=${voters:+,}$i@127.0.0.1:$(cport "$i")
	done
	((brokers > 1)) && misr=2
	cat <<EOF
# written by kafka.sh start: node $n of $brokers
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
EOF
	if ((secure)); then
		secure_properties "$n"
	else
		cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$(bport "$n"),CONTROLLER://127.0.0.1:$(cport "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(bport "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
	fi
	cat <<EOF
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$brokers
min.insync.replicas=$misr
offsets.topic.replication.factor=$brokers
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$brokers
transaction.state.log.min.isr=$misr
share.coordinator.state.topic.replication.factor=$brokers
share.coordinator.state.topic.min.isr=$misr
# tests: a group's first rebalance at once, a dead node fenced within seconds
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
EOF
}

# secure_properties N: node N's listeners in secure mode, TLS and SASL.
secure_properties() {
	local n=$1 plain=org.apache.kafka.common.security.plain.PlainLoginModule
	local scram=org.apache.kafka.common.security.scram.ScramLoginModule
	cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$(bport "$n"),CONTROLLER://127.0.0.1:$(cport "$n"),SASL_SSL://127.0.0.1:$(sport "$n"),SSL://127.0.0.1:$(tport "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(bport "$n"),SASL_SSL://127.0.0.1:$(sport "$n"),SSL://127.0.0.1:$(tport "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
# the key and certificate chain in one PEM file, unencrypted (no ssl.key.password)
ssl.keystore.type=PEM
ssl.keystore.location=$(node_dir "$n")/config/keystore.pem
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain required user_$sasl_user-plain="$sasl_password";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram required;
EOF
}

# make_certs: a fresh CA (ca_dir/ca.pem, readable by the tests) and, in
# ca_dir/keystore.pem, the nodes' key and certificate for 127.0.0.1 and
# localhost, signed by it.
make_certs() {
	local out
	command -v openssl >/dev/null || die "openssl is needed for secure mode (apt-get install openssl)"
	rm -rf "$ca_dir"
	mkdir -p "$ca_dir"
	if ! out=$(
		cd "$ca_dir" &&
			openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=flowdex Kafka test CA" \
				-keyout ca.key -out ca.pem 2>&1 &&
			openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>&1 &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
			openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
				-extfile ext.cnf -out broker.pem 2>&1 &&
			cat broker.key broker.pem >keystore.pem
	); then
		printf '%s\n' "$out" >&2
		die "openssl could not make the test certificates"
	fi
	chmod 644 "$ca_dir/ca.pem"
	chmod 600 "$ca_dir/ca.key" "$ca_dir/broker.key" "$ca_dir/keystore.pem"
}

log4j_properties() {
	cat <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $1/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
# the configuration dumps at start are long and say nothing new
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
EOF
}

# configure: fresh config and data dirs for every node, formatted.
configure() {
	local n d java out dirs="" id scram=() m
	java=$(java_home)
	rm -rf "$idir"/node-* "$cluster_env"
	if ((secure)); then
		make_certs
		for m in SCRAM-SHA-256 SCRAM-SHA-512; do
			scram+=(--add-scram "$m=[name=$sasl_user-${m,,},password=$sasl_password]")
		done
	fi
	for ((n = 1; n <= brokers; n++)); do
		d=$(node_dir "$n")
		mkdir -p "$d/config" "$d/data" "$d/logs" "$d/run" "$d/tmp"
		server_properties "$n" >"$d/config/server.properties"
		log4j_properties "$d" >"$d/config/log4j2.properties"
		# (the config holds PLAIN's password: the Kafka user's only)
		chmod 600 "$d/config/server.properties"
		if ((secure)); then
			install -m 600 "$ca_dir/keystore.pem" "$d/config/keystore.pem"
		fi
		dirs+=${dirs:+,}$d/data
	done
	# One StorageTool run formats every node's log dir (a JVM start each
	# would cost seconds of CPU): it writes the same meta.properties (with
	# its own directory.id) and bootstrap checkpoint into each, with node 1's
	# id, which we then set to each node's. With a static quorum
	# (controller.quorum.voters) nothing else in a formatted dir names the node.
	id=$(cluster_id)
	sed "s|^log.dirs=.*|log.dirs=$dirs|" "$(node_dir 1)/config/server.properties" >"$idir/format.properties"
	if ! out=$("$java/bin/java" -Xmx256m -XX:-UsePerfData \
		-Dlog4j2.configurationFile="$dist_dir/tools-log4j2.properties" -cp "$libs/*" \
		kafka.tools.StorageTool format -t "$id" -c "$idir/format.properties" ${scram[@]+"${scram[@]}"} 2>&1); then
		printf '%s\n' "$out" >&2
		die "could not format the log dirs of $label"
	fi
	rm -f "$idir/format.properties"
	for ((n = 1; n <= brokers; n++)); do
		d=$(node_dir "$n")/data
		[[ -s $d/meta.properties ]] || die "StorageTool wrote no $d/meta.properties"
		sed -i "s/^node\.id=.*/node.id=$n/" "$d/meta.properties"
		grep -qx "node.id=$n" "$d/meta.properties" || die "could not set node.id in $d/meta.properties"
	done
	if ((EUID == 0)); then
		chown -R "$kafka_user:" "$idir"/node-*
	fi
	printf 'brokers=%s\nport=%s\ncontroller_port=%s\nversion=%s\ncluster_id=%s\nsecure=%s\nsasl_ssl_port=%s\nssl_port=%s\n' \
		"$brokers" "$port" "$controller_port" "$version" "$id" "$secure" "$sasl_ssl_port" "$ssl_port" >"$cluster_env"
}

# ---------------------------------------------------------------------------
# start / stop

log_tail() {
	local f
	for f in "$1/logs/server.log" "$1/logs/stdout"; do
		[[ -s $f ]] || continue
		echo "---- tail of $f" >&2
		grep -v '^\s' "$f" | tail -n 30 >&2
	done
}

# launch N: start node N's JVM in its own session, detached from our pipes.
launch() {
	local n=$1 d java
	d=$(node_dir "$n")
	java=$(java_home)
	rm -rf "$d/run" "$d/tmp"
	mkdir -p "$d/run" "$d/tmp" "$d/logs"
	if ((EUID == 0)); then
		chown "$kafka_user:" "$d/run" "$d/tmp" "$d/logs"
	fi
	# The background subshell becomes setsid, then (as the Kafka user) a
	# bash that writes its pid and becomes the JVM: the pid file holds the
	# JVM's, and no shell of ours waits on it or keeps the lock (fd 9) open.
	# The working dir is the logs dir (hs_err files).
	# shellcheck disable=SC2016 # $$, $0 and $@ expand in the inner bash
	(cd "$d/logs" && exec setsid "${run_as[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$d/run/kafka.pid" \
		"$java/bin/java" -Xms"$heap" -Xmx"$heap" \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData \
		-Djava.awt.headless=true -Djava.io.tmpdir="$d/tmp" \
		-Dlog4j2.configurationFile="$d/config/log4j2.properties" \
		-cp "$libs/*" kafka.Kafka "$d/config/server.properties") \
		>"$d/logs/stdout" 2>&1 </dev/null 8>&- 9>&- &
}

# wait_up N...: wait until the nodes answer; on failure, stop them all.
wait_up() {
	local n pending=("$@") left t0=$SECONDS
	while ((${#pending[@]})); do
		left=()
		for n in "${pending[@]}"; do
			# (alive again: the pid file may have come between the two looks)
			if ! alive "$n" && { [[ -s $(pidfile "$n") ]] || ((SECONDS - t0 > 10)); } && ! alive "$n"; then
				log "node $n of $label exited during startup (or never started)"
				log_tail "$(node_dir "$n")"
				kill_nodes "$@"
				exit 1
			fi
			# (the TLS listeners open with the PLAINTEXT one; looked at all the same)
			if ! answers "$(bport "$n")" || { ((secure)) && ! { port_open "$(sport "$n")" && port_open "$(tport "$n")"; }; }; then
				left+=("$n")
			fi
		done
		pending=(${left[@]+"${left[@]}"})
		((${#pending[@]})) || break
		if ((SECONDS - t0 >= wait_secs)); then
			log "node(s) ${pending[*]} of $label not answering after ${wait_secs}s (FLOWDEX_KAFKA_WAIT); stopping"
			for n in "${pending[@]}"; do log_tail "$(node_dir "$n")"; done
			kill_nodes "$@"
			exit 1
		fi
		sleep 0.2
	done
}

# same_shape: the instance's last start had the settings of this one.
same_shape() {
	local kv
	[[ -s $cluster_env ]] || return 1
	for kv in "brokers=$brokers" "port=$port" "controller_port=$controller_port" "version=$version"; do
		grep -qx "$kv" "$cluster_env" || return 1
	done
	if ((secure)); then
		for kv in secure=1 "sasl_ssl_port=$sasl_ssl_port" "ssl_port=$ssl_port"; do
			grep -qx "$kv" "$cluster_env" || return 1
		done
	else
		# (a cluster.env written before secure mode has no secure line)
		! grep -qx secure=1 "$cluster_env"
	fi
}

start() {
	local n t0=$SECONDS running=0
	check_brokers
	same_shape || running=-1 # another shape: no reuse
	for ((n = 1; n <= 9; n++)); do
		if [[ -d $(node_dir "$n") ]] && alive "$n"; then
			((running >= 0)) || die "$label already runs with other settings ($(tr '\n' ' ' <"$cluster_env")); stop it first"
			running=$((running + 1))
		fi
	done
	if ((running == brokers)); then
		wait_up $(seq 1 "$brokers")
		log "$label already running"
		bootstrap
		return
	fi
	((running <= 0)) || die "$label runs in part ($running of $brokers nodes); start-broker N, or stop it first"
	for ((n = 1; n <= brokers; n++)); do
		if answers "$(bport "$n")"; then
			if ((brokers == 1 && !secure)); then
				log "a Kafka broker already answers on port $(bport 1) (not started by kafka.sh)"
				bootstrap
				return
			fi
			die "a Kafka broker not started by kafka.sh answers on port $(bport "$n"); set FLOWDEX_KAFKA_PORT"
		fi
		port_open "$(bport "$n")" && die "port $(bport "$n") is in use by something that is not Kafka; set FLOWDEX_KAFKA_PORT"
		port_open "$(cport "$n")" && die "controller port $(cport "$n") is in use; set FLOWDEX_KAFKA_CONTROLLER_PORT"
		if ((secure)); then
			port_open "$(sport "$n")" && die "SASL_SSL port $(sport "$n") is in use; set FLOWDEX_KAFKA_SASL_SSL_PORT"
			port_open "$(tport "$n")" && die "SSL port $(tport "$n") is in use; set FLOWDEX_KAFKA_SSL_PORT"
		fi
	done

	fetch
	if [[ ${FLOWDEX_KAFKA_KEEP_DATA:-} == 1 && $running == 0 && -s $(node_dir 1)/data/meta.properties ]]; then
		log "keeping the data of the previous run"
	else
		configure
	fi
	log "starting $label, $brokers node(s) on $(bootstrap) with $(java_home) (heap $heap each, as $kafka_user)"
	for ((n = 1; n <= brokers; n++)); do
		launch "$n"
	done
	wait_up $(seq 1 "$brokers")
	log "$label is up (pid $(for ((n = 1; n <= brokers; n++)); do printf '%s ' "$(pid_of "$n")"; done)) after $((SECONDS - t0))s"
	bootstrap
}

start_broker() {
	local n=$1 t0=$SECONDS
	[[ -s $cluster_env ]] || die "$label was never started"
	node_arg "$n"
	if alive "$n"; then
		log "node $n of $label already runs (pid $(pid_of "$n"))"
		return
	fi
	port_open "$(bport "$n")" && die "port $(bport "$n") of node $n is in use"
	launch "$n"
	wait_up "$n"
	log "node $n of $label is up (pid $(pid_of "$n")) after $((SECONDS - t0))s"
}

# signal_nodes SIG SECS N...: send SIG to the nodes that run, wait up to
# SECS for them to exit, then SIGKILL those left.
signal_nodes() {
	local sig=$1 secs=$2 n pid pids=() i
	shift 2
	for n in "$@"; do
		alive "$n" || continue
		pid=$(pid_of "$n")
		kill "-$sig" "$pid" 2>/dev/null || true
		pids+=("$pid")
		if [[ $sig == KILL ]]; then echo "$label node $n killed (pid $pid)"; else echo "$label node $n stopped (pid $pid)"; fi
	done
	if ((${#pids[@]} == 0)); then
		echo "$label: no node of $* running"
		return
	fi
	for ((i = 0; i < secs * 10; i++)); do
		any_running "${pids[@]}" || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if running "$pid"; then
			log "pid $pid did not exit within ${secs}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	while any_running "${pids[@]}"; do sleep 0.1; done
	for n in "$@"; do rm -f "$(pidfile "$n")"; done
}

# running PID: the process exists and is not a zombie (whose parent has
# not reaped it yet: it holds no port and no file any more).
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

any_running() {
	local pid
	for pid in "$@"; do
		running "$pid" && return 0
	done
	return 1
}

kill_nodes() { signal_nodes KILL 10 "$@" >/dev/null; }

all_nodes() { seq 1 "$brokers"; }

status() {
	local n up=0 down=()
	for ((n = 1; n <= brokers; n++)); do
		if alive "$n" && answers "$(bport "$n")"; then
			up=$((up + 1))
		else
			down+=("$n")
		fi
	done
	if ((up == brokers)); then
		echo "$label running, $brokers node(s) at $(bootstrap)"
	elif ((up > 0)); then
		echo "$label: node(s) ${down[*]} of $brokers not running or not answering"
		return 1
	elif answers "$(bport 1)"; then
		echo "a Kafka broker answers on 127.0.0.1:$(bport 1) (not started by kafka.sh)"
	else
		echo "$label is not running"
		return 3
	fi
}

# ---------------------------------------------------------------------------
# Kafka's tools, by the names of its bin/ scripts.

tool_class() {
	case $1 in
	kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
	kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
	kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
	kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
	kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
	kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
	kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
	kafka-configs) echo org.apache.kafka.tools.ConfigCommand ;;
	kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
	kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
	kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
	kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
	kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
	kafka-dump-log) echo org.apache.kafka.tools.DumpLogSegments ;;
	kafka-e2e-latency) echo org.apache.kafka.tools.EndToEndLatency ;;
	kafka-storage) echo kafka.tools.StorageTool ;;
	*) return 1 ;;
	esac
}

readonly TOOLS="kafka-topics kafka-consumer-groups kafka-producer-perf-test kafka-consumer-perf-test
kafka-console-producer kafka-console-consumer kafka-get-offsets kafka-configs kafka-delete-records
kafka-metadata-quorum kafka-broker-api-versions kafka-leader-election kafka-reassign-partitions
kafka-dump-log kafka-e2e-latency kafka-storage"

tool() {
	local name=${1:-} class java
	if [[ -z $name || $name == list ]]; then
		echo "$TOOLS" | tr ' ' '\n'
		return
	fi
	name=${name%.sh}
	class=$(tool_class "$name") || die "unknown tool '$name' (kafka.sh tool list)"
	shift
	fetch
	java=$(java_home)
	exec "$java/bin/java" -Xmx"$tool_heap" -XX:-UsePerfData -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$dist_dir/tools-log4j2.properties" \
		-cp "$libs/*" "$class" "$@" 9>&-
}

# ---------------------------------------------------------------------------

cmd=${1:-}
setup
case $cmd in
fetch)
	(($# == 1)) || usage
	fetch
	java_home >/dev/null
	echo "$libs"
	;;
start)
	(($# <= 2)) || usage
	[[ -z ${2:-} ]] || brokers=$2
	lock
	start
	;;
stop)
	(($# == 1)) || usage
	lock
	load_cluster
	signal_nodes TERM "${FLOWDEX_KAFKA_STOP_WAIT:-30}" $(all_nodes)
	;;
remove)
	(($# == 1)) || usage
	# only an instance: the default one is the shared test broker
	[[ $instance != default ]] || die "remove is for the nodes of a FLOWDEX_KAFKA_INSTANCE (it deletes their state dir)"
	lock
	load_cluster
	kill_nodes $(all_nodes)
	rm -rf "$idir"
	;;
status | url | listeners)
	(($# == 1)) || usage
	load_cluster
	case $cmd in
	status) status ;;
	url) bootstrap ;;
	listeners) listeners ;;
	esac
	;;
ca)
	(($# == 1)) || usage
	[[ -s $ca_dir/ca.pem ]] || die "no CA for $label: start it with FLOWDEX_KAFKA_SECURE=1 first"
	echo "$ca_dir/ca.pem"
	;;
pid)
	(($# <= 2)) || usage
	load_cluster
	if [[ -n ${2:-} ]]; then
		node_arg "$2"
		alive "$2" || exit 3
		pid_of "$2"
	else
		for n in $(all_nodes); do alive "$n" && pid_of "$n"; done
	fi
	;;
stop-broker | kill-broker | start-broker)
	(($# == 2)) || usage
	lock
	load_cluster
	node_arg "$2"
	case $cmd in
	stop-broker) signal_nodes TERM "${FLOWDEX_KAFKA_STOP_WAIT:-30}" "$2" ;;
	kill-broker) signal_nodes KILL 10 "$2" ;;
	start-broker) start_broker "$2" ;;
	esac
	;;
tool)
	shift
	tool "$@"
	;;
*) usage ;;
esac
