# flowdex: the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
ES := sink/elasticsearch/estest/es.sh
KAFKA := internal/kafkatest/kafka.sh
BIN := bin/flowdex
# Debian packages the tests use (OpenJDK 17 and maven also run Kafka, see kafka.sh): pmacct is the reference for compatibility,
# softflowd exports NetFlow for the collector tests, faketime sets the clocks of
# the exporters fed old captures (cmd/flowdex/clock_test.go), tcpdump and ping make and see
# live traffic for the capture test, libpcap-dev and gcc build the
# BPF filters (cgo), unzip unpacks Elasticsearch's test distribution (fetched
# with maven, run on OpenJDK 17), openssl makes the CAs of the secure test servers
# (Elasticsearch's and Kafka's) and the JDK's javac builds ES's plugin for API keys (see es.sh), systemd's
# systemd-analyze verifies the shipped unit, chromium runs the web view's test.
DEBIAN_PACKAGES := pmacct softflowd bird2 frr faketime tcpdump iputils-ping libpcap-dev gcc unzip maven openjdk-17-jre-headless openjdk-17-jdk-headless openssl systemd chromium

.PHONY: all build run test quick test-dates deps es-start es-stop es9-start es9-stop es-secure-start es-secure-stop kafka-start kafka-stop kafka-secure-start kafka-secure-stop vet fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/flowdex

# Run flowdex on a local default: a local Elasticsearch is started for you and
# flowdex follows a pmacct print-plugin file (see configs/quickstart.toml).
run: build es-start
	mkdir -p var
	$(BIN) run -c configs/quickstart.toml

# Install everything, start Elasticsearch 8, 9 and 8 with security (basic
# authentication, see es.sh), a Kafka broker and one with TLS and SASL
# (kafka.sh), run every test with the race detector (the fuzz targets on
# their seed corpora), stop them.
test: deps
	$(ES) start 8 >/dev/null
	$(ES) start 9 >/dev/null
	$(ES) start 8s >/dev/null
	$(KAFKA) start >/dev/null
	FLOWDEX_KAFKA_SECURE=1 $(KAFKA) start >/dev/null
	set -o pipefail; status=0; \
	FLOWDEX_TEST_ES_URL=$$($(ES) url 8) FLOWDEX_TEST_ES9_URL=$$($(ES) url 9) \
	FLOWDEX_TEST_ES_SECURE_URL=$$($(ES) url 8s) FLOWDEX_TEST_ES_SECURE_CA=$$($(ES) ca 8s) FLOWDEX_REQUIRE_ES=1 \
	FLOWDEX_TEST_KAFKA=$$($(KAFKA) url) FLOWDEX_REQUIRE_KAFKA=1 \
	FLOWDEX_TEST_KAFKA_SECURE=$$(FLOWDEX_KAFKA_SECURE=1 $(KAFKA) listeners) \
	FLOWDEX_TEST_KAFKA_SECURE_CA=$$(FLOWDEX_KAFKA_SECURE=1 $(KAFKA) ca) \
	  $(GO) test -race -count=1 -timeout 25m ./... || status=$$?; \
	FLOWDEX_KAFKA_SECURE=1 $(KAFKA) stop || true; $(KAFKA) stop || true; \
	$(ES) stop 8s || true; $(ES) stop 9 || true; $(ES) stop 8 || true; \
	exit $$status

# The quick suite, for development: formatting, vet and every test that needs
# no Elasticsearch (those skip), without the race detector; the goldens
# against pmacct run when its programs are installed (make deps).
quick:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	FLOWDEX_TEST_NO_ES=1 FLOWDEX_TEST_NO_KAFKA=1 $(GO) test -count=1 ./...

# The goldens against pmacct's C programs with their clocks shifted by
# libfaketime (cmd/flowdex/clock_test.go): no golden may depend on the date.
test-dates: deps
	set -e; for shift in -49d -25d +25d +49d; do \
	  echo "== clocks of nfacctd, sfacctd and pmacctd shifted by $$shift"; \
	  CI=true FLOWDEX_TEST_CLOCK_SHIFT=$$shift $(GO) test -count=1 -run 'TestExporterGolden|TestPcapFileMatchesPmacctd|TestPmacctRegressionCases|TestKafkaInputNfacctd|TestPretagMatches|TestPretagNetFlowKeysMatches|TestCustomPrimitivesMatch|TestPacketPointersMatch|TestProbeTagsMatch|TestBGPPrimitivesMatch|TestBGPNetsMatch|TestBGPTextsMatch|TestBGPPeerByIdentifierMatch|TestBGPAddPathMatch|TestBGPPeerSrcASMatch|TestNATEventsMatch|TestVPNPrimitivesMatch|TestGeoIPMatches|TestCSVMatches' ./cmd/flowdex; \
	done

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(ES) fetch 8
	$(ES) fetch 9
	$(KAFKA) fetch
	$(GO) mod download

es-start:
	$(ES) start 8
es-stop:
	$(ES) stop 8
es9-start:
	$(ES) start 9
es9-stop:
	$(ES) stop 9
# Elasticsearch 8 with security on: user and password from FLOWDEX_ES_SECURE_USER
# and FLOWDEX_ES_SECURE_PASSWORD, else es.sh's test defaults.
es-secure-start:
	$(ES) start 8s
es-secure-stop:
	$(ES) stop 8s
# Kafka: one broker on 127.0.0.1:9092 (`kafka.sh start 3` for three)
kafka-start:
	$(KAFKA) start
kafka-stop:
	$(KAFKA) stop
# Kafka with TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on
# 127.0.0.1:9295, TLS alone on :9395, PLAINTEXT on :9095; `kafka.sh ca` and
# its FLOWDEX_KAFKA_SASL_* variables give the CA and the users.
kafka-secure-start:
	FLOWDEX_KAFKA_SECURE=1 $(KAFKA) start
	FLOWDEX_KAFKA_SECURE=1 $(KAFKA) listeners
kafka-secure-stop:
	FLOWDEX_KAFKA_SECURE=1 $(KAFKA) stop

vet:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Each fuzz target for a while (FUZZTIME=10m for a long run); make test runs
# their seed corpora only, as tests.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "== $$pkg $$t"; $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run XXX -bench . -benchmem ./...

# flowdex beside nfacctd, sfacctd, pmacctd and a goflow2 decode loop on the same
# generated inputs: writes bench/RESULTS.md (RUNS=3 SCALE=1 by default).
RUNS ?= 3
SCALE ?= 1
bench-peers:
	$(GO) run ./bench/harness -runs $(RUNS) -scale $(SCALE) $(if $(ONLY),-only $(ONLY))

clean:
	rm -rf bin var
