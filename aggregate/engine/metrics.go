package engine

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
)

// metrics exposes the counters every component keeps anyway: they are read
// at scrape time, so the data path pays nothing for Prometheus.
type metrics struct{ e *Engine }

// newRegistry is the registry /metrics serves: flowdex's counters, the Go
// runtime's and the process's.
func newRegistry(e *Engine) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(metrics{e},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowdex_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": e.opts.Version}}, func() float64 { return 1 }))
	return r
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("flowdex_"+name, help, labels, nil)
}

var (
	// inputs
	mDatagrams       = desc("input_datagrams_total", "Datagrams handed to the decoder.", "input")
	mMalformed       = desc("input_malformed_datagrams_total", "Datagrams the decoder could not read (all or part).", "input")
	mRejected        = desc("input_rejected_datagrams_total", "Datagrams from sources outside the input's exporters allow-list, dropped before decoding.", "input")
	mReceived        = desc("input_received_datagrams_total", "Datagrams read from the input's sockets.", "input")
	mReceivedBytes   = desc("input_received_bytes_total", "Payload bytes read from the input's sockets.", "input")
	mDropped         = desc("input_dropped_datagrams_total", "Datagrams lost before decoding: queue_full (decoding too slow), kernel (socket buffer full), truncated (too long), shutdown (arrived after the input stopped, read and counted as the sockets closed).", "input", "reason")
	mInputRecords    = desc("input_records_total", "Flow records the input decoded (NetFlow/IPFIX records, sFlow samples, captured packets).", "input")
	mTemplates       = desc("input_netflow_templates_total", "NetFlow v9/IPFIX template events: added, refreshed, refused (unusable), withdrawn, loaded, over_limit (the exporter has 4096), over_bytes (past templates_max_bytes or templates_max_bytes_per_exporter).", "input", "event")
	mSamplersRefused = desc("input_netflow_sampling_rates_refused_total", "Sampling rates of new sampler ids refused: the exporter has max_samplers, or the template store is at its byte bounds.", "input")
	mPacketCustom    = desc("input_packet_custom_fields_total", "Values of custom primitives read from packets (packet_ptr: captures, sFlow's sampled headers) not kept as they came: cut (of variable length, longer than the 48 bytes flowdex keeps).", "input", "reason")
	mCustomFields    = desc("input_netflow_custom_fields_total", "Fields of custom primitives (aggregate_primitives) not read as they came: short (of another length than the primitive's len: left out of the record, the record kept), cut (of variable length, longer than the 48 bytes flowdex keeps: cut).", "input", "reason")
	mStoreBytes      = desc("input_netflow_template_store_bytes", "Estimated memory of the NetFlow templates and sampling rates kept, bounded by templates_max_bytes.", "input")
	mUntracked       = desc("input_untracked_exporter_datagrams_total", "Datagrams from exporters past the input's exporter table (4096 per input): their templates are not kept, they are counted as exporter \"other\".", "input")
	mEvicted         = desc("input_evicted_exporters_total", "Exporters that kept no template nor sampling rate, removed from a full exporter table to make room for one with a template (their counters go with them).", "input")
	mTemplateMisses  = desc("input_template_misses_total", "Data sets dropped because their template was unknown.", "input", "exporter")
	mExpDatagrams    = desc("exporter_datagrams_total", "Datagrams decoded per exporter (up to 4096 per input; the rest as \"other\").", "input", "exporter")
	mExpRecords      = desc("exporter_records_total", "Flow records decoded per exporter.", "input", "exporter")
	mExpMalformed    = desc("exporter_decode_errors_total", "Malformed datagrams per exporter.", "input", "exporter")
	mCapPackets      = desc("capture_packets_total", "Packets read by a pcap input.", "input")
	mCapDropped      = desc("capture_dropped_packets_total", "Packets libpcap reports lost: kernel (capture buffer full), interface.", "input", "reason")
	mCapNotIP        = desc("capture_not_ip_packets_total", "Captured packets without IP, not accounted.", "input")
	mCapOrphans      = desc("capture_orphaned_fragments_total", "IP fragments whose first fragment never came.", "input")
	// pmacct inputs (all of them)
	mLines     = desc("pmacct_lines_total", "Lines read from pmacct JSON/CSV inputs.")
	mBadLines  = desc("pmacct_bad_lines_total", "pmacct lines that could not be read, skipped.")
	mBadUTF8   = desc("pmacct_invalid_utf8_lines_total", "pmacct JSON lines with bytes that are not UTF-8, kept with U+FFFD in their place.")
	mLostBytes = desc("pmacct_lost_bytes_total", "Bytes of followed pmacct files rewritten before they were read.")
	mPRecords  = desc("records_total", "Records written to the outputs (pmacct records and flushed aggregates).")
	mWriteErrs = desc("write_errors_total", "Documents an output refused at Write.")
	// kafka inputs
	mKafkaMessages   = desc("kafka_messages_total", "Kafka messages read into the pipeline.", "input")
	mKafkaRecords    = desc("kafka_records_total", "pmacct records read from Kafka messages.", "input")
	mKafkaMarkers    = desc("kafka_markers_total", "pmacct purge markers read from Kafka messages, not indexed.", "input")
	mKafkaHeaderIDs  = desc("kafka_header_ids_total", "Records whose document id is the one their message carried (flowdex's kafka output), not made from topic, partition and offset.", "input")
	mKafkaBad        = desc("kafka_bad_messages_total", "Kafka messages that are not (all) pmacct JSON: logged, dead-lettered when the input has a dead_letter_file, committed past.", "input")
	mKafkaDead       = desc("kafka_dead_lettered_messages_total", "Bad Kafka messages written to the input's dead_letter_file.", "input")
	mKafkaCommits    = desc("kafka_commits_total", "Offset commits: ok (after the outputs delivered the batch), failed (the batch is read again; its documents keep their ids).", "input", "result")
	mKafkaFetchErrs  = desc("kafka_fetch_errors_total", "Fetches from the brokers that failed (retried).", "input")
	mKafkaRebalances = desc("kafka_partitions_total", "Partitions changing hands in rebalances: assigned to this member, revoked from it, lost (session expired).", "input", "event")
	mKafkaLag        = desc("kafka_consumer_lag", "Messages of the partition not yet committed by this member: the high watermark of its last fetch less the committed offset.", "input", "topic", "partition")
	// pipelines
	mPipeRecords  = desc("pipeline_records_total", "Flow records given to the pipeline.", "pipeline")
	mPipeFiltered = desc("pipeline_filtered_records_total", "Records the pipeline's filter rejected.", "pipeline")
	mPipeSampled  = desc("pipeline_sampled_out_records_total", "Records passed over by the pipeline's sampling.", "pipeline")
	mPipeFlushes  = desc("pipeline_flushes_total", "Cache flushes (refreshes and the last one at stop).", "pipeline")
	mPipeFlushed  = desc("pipeline_aggregates_written_total", "Aggregates the pipeline wrote out.", "pipeline")
	mPipeFull     = desc("pipeline_cache_full_total", "Times the pipeline's cache reached cache_entries, each flushed at once (pmacct's urgent purge).", "pipeline")
	mPipeEntries  = desc("pipeline_cache_entries", "Aggregates in the pipeline's cache now.", "pipeline")
	// outputs
	mOutDocs     = desc("output_documents_total", "Documents by what became of them: written (accepted), indexed, duplicate (id already indexed), failed, dead_lettered, retried (each new attempt), spooled (each time), replayed (sent from the spool), spool_lost (documents of damaged spool records, which are skipped), unconfirmed (failed or dead-lettered after a request cut short, which may have indexed them); Kafka outputs: written, produced (acknowledged by the brokers), failed, retried (produce requests sent again after a connection error), markers (purge_init and purge_close messages produced).", "output", "result")
	mOutRequests = desc("output_bulk_requests_total", "Bulk requests sent.", "output")
	mOutBulkErrs = desc("output_bulk_errors_total", "Bulk requests that failed as a whole.", "output")
	mOutQueued   = desc("output_queue_documents", "Documents in memory: accepted, not yet indexed, given up or spooled.", "output")
	mOutSpoolB   = desc("output_spool_bytes", "Bytes waiting in the spool.", "output")
	mOutSpoolD   = desc("output_spool_documents", "Documents waiting in the spool.", "output")
	mOutLatency  = desc("output_bulk_duration_seconds", "Bulk request latency, from sending to the whole answer read.", "output")
	mOutHealthy  = desc("output_healthy", "1 when the output delivers: started, and its last bulk request succeeded or failed in a way its spool takes over, else 0.", "output")
	mOutBadAddrs = desc("output_malformed_addresses_total", "Values of fields the index template maps as ip that are not addresses: Elasticsearch indexes their documents without them.", "output")
	mOutDiscover = desc("output_node_discoveries_total", "Elasticsearch node discoveries (discover_nodes): ok (nodes found; requests go to them), failed (no answer, an error, or no node found: the configured urls are used beside the nodes known).", "output", "result")
	mOutNodes    = desc("output_nodes", "Elasticsearch nodes requests go to in turn (the configured urls, or those discovered), by state: answering, or aside (gave no answer; probed until it answers). A single node without discovery is never set aside: it counts as answering.", "output", "state")
	mRetention   = desc("retention_total", "Retention: runs, indices deleted, and runs that failed (errors).", "output", "event")
	// the HTTP server
	mHTTPRefused = desc("http_refused_requests_total", "HTTP requests answered 421 because their Host header is not a name of this server ([http] allowed_hosts).")
	// enrichment, per pipeline
	mEnrichLookups = desc("enrich_lookups_total", "Enrichment lookups by kind (geoip, asn, service, interface) and result (hit, miss).", "pipeline", "kind", "result")
	mEnrichBad     = desc("enrich_bad_addresses_total", "Address fields enrichment could not parse.", "pipeline")
	mEnrichErrors  = desc("enrich_lookup_errors_total", "Enrichment lookups that failed on a database error.", "pipeline")
	mEnrichReloads = desc("enrich_reloads_total", "Enrichment reloads (SIGHUP) by result (ok, failed: the previous files stay in use).", "pipeline", "result")
	mBGPRefused    = desc("bgp_connections_refused_total", "BGP connections closed at once: from an address no [[bgp.peer]] prefix holds (address), or from a peer that has a session already (collision).", "reason")
	mBGPSessions   = desc("bgp_sessions_established_total", "BGP sessions that reached Established.")
	mBGPResets     = desc("bgp_session_resets_total", "BGP sessions ended, by reason (closed, notification, hold_expired, malformed, open, fsm, max_prefixes, shutdown); each drops the peer's routes.", "reason")
	mBGPUpdates    = desc("bgp_updates_total", "BGP UPDATE messages received.")
	mBGPRoutes     = desc("bgp_routes_total", "BGP routes announced and withdrawn (a route announced again counts again).", "event")
	mBGPAttrSets   = desc("bgp_attribute_sets", "Distinct path attribute sets the peers' routes share.")
	mBGPPeerUp     = desc("bgp_peer_established", "1 for a peer whose session is established, 0 while its OPEN is exchanged; absent without a session.", "peer", "asn")
	mBGPPeerRoutes = desc("bgp_peer_routes", "Routes in a peer's Adj-RIB-In.", "peer")
	mBGPPeerUpd    = desc("bgp_peer_updates_total", "UPDATE messages from a peer in its current session.", "peer")
	mBMPRefused    = desc("bmp_connections_refused_total", "BMP connections closed at once: from an address no [bmp] routers prefix holds.")
	mBMPSessions   = desc("bmp_sessions_total", "BMP sessions accepted.")
	mBMPResets     = desc("bmp_session_resets_total", "BMP sessions ended, by reason (closed, terminated, malformed, replaced, shutdown); each drops the router's routes.", "reason")
	mBMPRouters    = desc("bmp_routers", "BMP routers connected.")
	mBMPPeerEvents = desc("bmp_peer_notifications_total", "BMP Peer Up and Peer Down notifications (a peer down drops its routes).", "event")
	mBMPRouteMon   = desc("bmp_route_monitoring_total", "BMP Route Monitoring messages applied.")
	mBMPIgnored    = desc("bmp_ignored_messages_total", "BMP messages whose routes were left, by reason (pre_policy, post_policy: not the [bmp] policy's; adj_rib_out; peer_type: not a global instance peer; route_mirroring).", "reason")
	mBMPRoutes     = desc("bmp_routes_total", "BMP routes announced and withdrawn (a route announced again counts again).", "event")
	mBMPStats      = desc("bmp_statistics_reports_total", "BMP Statistics Report messages.")
	mBMPAttrSets   = desc("bmp_attribute_sets", "Distinct path attribute sets the BMP routers' routes share.")
	mBMPRouterRts  = desc("bmp_router_routes", "Prefixes in a BMP router's view (its monitored peers' routes merged).", "router", "sys_name")
	mBMPMonitored  = desc("bmp_monitored_peers", "Peers a BMP router monitors.", "router")
	mBMPPeerRoutes = desc("bmp_peer_routes", "Routes of a monitored peer, best or not.", "router", "peer", "asn")
	mLabels        = desc("labels", "Label texts kept (pre_tag_map labels, NetFlow application names, and the AS paths and communities of routes).")
	mLabelsFreed   = desc("labels_freed_total", "Texts of routes gone freed, once no cache could hold an aggregate made while they were there.")
	allMetricDesc  = []*prometheus.Desc{mLabels, mLabelsFreed, mBGPRefused, mBGPSessions, mBGPResets, mBGPUpdates, mBGPRoutes, mBGPAttrSets, mBGPPeerUp, mBGPPeerRoutes, mBGPPeerUpd,
		mBMPRefused, mBMPSessions, mBMPResets, mBMPRouters, mBMPPeerEvents, mBMPRouteMon, mBMPIgnored, mBMPRoutes, mBMPStats, mBMPAttrSets, mBMPRouterRts, mBMPMonitored, mBMPPeerRoutes,
		mDatagrams, mMalformed, mRejected, mReceived, mReceivedBytes, mDropped, mInputRecords,
		mTemplates, mSamplersRefused, mStoreBytes, mCustomFields, mPacketCustom, mUntracked, mEvicted, mTemplateMisses, mExpDatagrams, mExpRecords, mExpMalformed, mCapPackets, mCapDropped, mCapNotIP,
		mCapOrphans, mLines, mBadLines, mBadUTF8, mLostBytes, mPRecords, mWriteErrs, mPipeRecords, mPipeFiltered, mPipeSampled,
		mPipeFlushes, mPipeFlushed, mPipeEntries, mPipeFull, mOutDocs, mOutRequests, mOutBulkErrs, mOutQueued, mOutSpoolB, mOutSpoolD,
		mOutLatency, mOutHealthy, mOutBadAddrs, mOutDiscover, mOutNodes, mRetention, mHTTPRefused, mEnrichLookups, mEnrichBad, mEnrichErrors, mEnrichReloads,
		mKafkaMessages, mKafkaRecords, mKafkaMarkers, mKafkaHeaderIDs, mKafkaBad, mKafkaDead, mKafkaCommits, mKafkaFetchErrs, mKafkaRebalances, mKafkaLag}
)

func (m metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allMetricDesc {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, fi := range m.e.flowInputs {
		m.collectInput(fi, counter, gauge)
	}
	if m.e.rib != nil || m.e.bmpRIB != nil {
		gauge(mLabels, float64(flow.Labels()))
		counter(mLabelsFreed, m.e.counters.labelsFreed.Load())
	}
	if l := m.e.bgp; l != nil {
		st := l.Stats()
		counter(mBGPRefused, st.Refused, "address")
		counter(mBGPRefused, st.Collisions, "collision")
		counter(mBGPSessions, st.Established)
		for reason, n := range st.Resets {
			counter(mBGPResets, n, reason)
		}
		counter(mBGPUpdates, st.Updates)
		counter(mBGPRoutes, st.Announced, "announced")
		counter(mBGPRoutes, st.Withdrawn, "withdrawn")
		gauge(mBGPAttrSets, float64(m.e.rib.AttrSets()))
		for _, p := range l.Peers() {
			up := 0.0
			if p.Established {
				up = 1
			}
			peer := p.Address.String()
			gauge(mBGPPeerUp, up, peer, strconv.FormatUint(uint64(p.ASN), 10))
			gauge(mBGPPeerRoutes, float64(p.Routes), peer)
			counter(mBGPPeerUpd, p.Updates, peer)
		}
	}
	if l := m.e.bmp; l != nil {
		st := l.Stats()
		counter(mBMPRefused, st.Refused)
		counter(mBMPSessions, st.Sessions)
		for reason, n := range st.Resets {
			counter(mBMPResets, n, reason)
		}
		counter(mBMPPeerEvents, st.PeerUps, "up")
		counter(mBMPPeerEvents, st.PeerDowns, "down")
		counter(mBMPRouteMon, st.RouteMonitoring)
		for reason, n := range st.Ignored {
			counter(mBMPIgnored, n, reason)
		}
		counter(mBMPRoutes, st.Announced, "announced")
		counter(mBMPRoutes, st.Withdrawn, "withdrawn")
		counter(mBMPStats, st.StatsReports)
		gauge(mBMPAttrSets, float64(m.e.bmpRIB.AttrSets()))
		routers := l.Routers()
		gauge(mBMPRouters, float64(len(routers)))
		for _, r := range routers {
			router := r.Address.String()
			gauge(mBMPRouterRts, float64(r.Routes), router, r.SysName)
			gauge(mBMPMonitored, float64(len(r.Peers)), router)
			for _, p := range r.Peers {
				gauge(mBMPPeerRoutes, float64(p.Routes), router, p.Address.String(), strconv.FormatUint(uint64(p.ASN), 10))
			}
		}
	}
	for _, k := range m.e.kafkaInputs {
		st := k.consumer.Stats()
		counter(mKafkaMessages, k.messages.Load(), k.name)
		counter(mKafkaRecords, k.records.Load(), k.name)
		counter(mKafkaMarkers, k.markers.Load(), k.name)
		counter(mKafkaHeaderIDs, k.headerIDs.Load(), k.name)
		counter(mKafkaBad, k.badMsg.Load(), k.name)
		counter(mKafkaDead, k.deadLettered.Load(), k.name)
		counter(mKafkaCommits, st.Commits, k.name, "ok")
		counter(mKafkaCommits, st.CommitErrors, k.name, "failed")
		counter(mKafkaFetchErrs, st.FetchErrors, k.name)
		counter(mKafkaRebalances, st.Assigned, k.name, "assigned")
		counter(mKafkaRebalances, st.Revoked, k.name, "revoked")
		counter(mKafkaRebalances, st.Lost, k.name, "lost")
		for _, l := range k.consumer.Lags() {
			gauge(mKafkaLag, float64(l.Lag), k.name, l.Topic, strconv.FormatInt(int64(l.Partition), 10))
		}
	}
	counter(mLines, m.e.counters.lines.Load())
	counter(mBadLines, m.e.counters.badLines.Load())
	counter(mBadUTF8, m.e.counters.invalidUTF8.Load())
	counter(mLostBytes, m.e.counters.lostBytes.Load())
	counter(mPRecords, m.e.counters.records.Load())
	counter(mWriteErrs, m.e.counters.writeErrors.Load())
	if m.e.web != nil {
		counter(mHTTPRefused, m.e.web.hosts.refused.Load())
	}
	for _, fp := range m.e.flowPipelines {
		st := fp.cache.Stats()
		counter(mPipeRecords, st.Records, fp.name)
		counter(mPipeFiltered, st.Filtered, fp.name)
		counter(mPipeSampled, st.Sampled, fp.name)
		counter(mPipeFlushes, st.Flushes, fp.name)
		counter(mPipeFlushed, st.Flushed, fp.name)
		gauge(mPipeEntries, float64(st.Entries), fp.name)
		counter(mPipeFull, st.Full, fp.name)
	}
	for name, e := range m.e.enrichers() {
		st := e.Stats()
		for _, l := range []struct {
			kind         string
			hits, misses uint64
		}{{"geoip", st.GeoHits, st.GeoMisses}, {"asn", st.ASNHits, st.ASNMisses},
			{"service", st.ServiceHits, st.ServiceMisses}, {"interface", st.InterfaceHits, st.InterfaceMisses}} {
			counter(mEnrichLookups, l.hits, name, l.kind, "hit")
			counter(mEnrichLookups, l.misses, name, l.kind, "miss")
		}
		counter(mEnrichBad, st.BadAddresses, name)
		counter(mEnrichErrors, st.LookupErrors, name)
		counter(mEnrichReloads, st.Reloads, name, "ok")
		counter(mEnrichReloads, st.ReloadErrors, name, "failed")
	}
	for _, o := range m.e.outputs {
		if k, ok := o.output.(kafkaOutput); ok {
			st := k.Stats()
			for _, r := range []struct {
				result string
				n      uint64
			}{{"written", st.Written}, {"produced", st.Produced}, {"failed", st.Failed}, {"retried", st.Retried}, {"markers", st.Markers},
				{"spooled", st.Spooled}, {"replayed", st.Replayed}, {"spool_lost", st.SpoolLost}} {
				counter(mOutDocs, r.n, o.name, r.result)
			}
			gauge(mOutQueued, float64(st.Queued), o.name)
			continue
		}
		es, ok := o.output.(*esOutput)
		if !ok {
			continue
		}
		st := es.Stats()
		for _, r := range []struct {
			result string
			n      uint64
		}{{"written", st.Written}, {"indexed", st.Indexed}, {"duplicate", st.Duplicates}, {"failed", st.Failed},
			{"dead_lettered", st.DeadLettered}, {"retried", st.Retried}, {"spooled", st.Spooled}, {"replayed", st.Replayed},
			{"spool_lost", st.SpoolLost}, {"unconfirmed", st.Unconfirmed}} {
			counter(mOutDocs, r.n, o.name, r.result)
		}
		counter(mOutRequests, st.Requests, o.name)
		counter(mOutBulkErrs, st.BulkErrors, o.name)
		counter(mOutBadAddrs, st.MalformedAddresses, o.name)
		counter(mOutDiscover, st.Discoveries, o.name, "ok")
		counter(mOutDiscover, st.DiscoveryFailures, o.name, "failed")
		gauge(mOutNodes, float64(st.Nodes-st.NodesAside), o.name, "answering")
		gauge(mOutNodes, float64(st.NodesAside), o.name, "aside")
		gauge(mOutQueued, float64(st.Queued), o.name)
		gauge(mOutSpoolB, float64(st.SpoolBytes), o.name)
		gauge(mOutSpoolD, float64(st.SpoolDocs), o.name)
		buckets := make(map[float64]uint64, len(st.Latency.Bounds))
		var total uint64
		for i, le := range st.Latency.Bounds {
			total += st.Latency.Counts[i]
			buckets[le] = total
		}
		total += st.Latency.Counts[len(st.Latency.Counts)-1]
		ch <- prometheus.MustNewConstHistogram(mOutLatency, total, st.Latency.Seconds, buckets, o.name)
		healthy := 0.0
		if es.Health().Delivers() {
			healthy = 1
		}
		gauge(mOutHealthy, healthy, o.name)
		if es.retention != nil {
			rs := es.retention.Stats()
			counter(mRetention, rs.Runs, o.name, "runs")
			counter(mRetention, rs.Deleted, o.name, "deleted")
			counter(mRetention, rs.Errors, o.name, "errors")
		}
	}
}

func (m metrics) collectInput(fi *flowInput, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	name := fi.name
	if c := fi.capt.Load(); c != nil {
		st := c.Stats()
		counter(mCapPackets, st.Packets, name)
		counter(mInputRecords, st.Records, name)
		counter(mCapDropped, st.KernelDrops, name, "kernel")
		counter(mCapDropped, st.InterfaceDrops, name, "interface")
		counter(mCapNotIP, st.NotIP, name)
		counter(mCapOrphans, st.FragmentsOrphaned, name)
		counter(mPacketCustom, st.CustomCut, name, "cut")
		return
	}
	if _, ok := fi.cfg.(*config.PcapInput); ok {
		return // not open yet
	}
	counter(mDatagrams, fi.datagrams.Load(), name)
	counter(mMalformed, fi.malformed.Load(), name)
	counter(mRejected, fi.rejected.Load(), name)
	if l := fi.listener.Load(); l != nil {
		st := l.Stats()
		counter(mReceived, st.Received, name)
		counter(mReceivedBytes, st.Bytes, name)
		counter(mDropped, st.Dropped, name, "queue_full")
		counter(mDropped, st.KernelDrops, name, "kernel")
		counter(mDropped, st.Truncated, name, "truncated")
		counter(mDropped, st.Unhandled, name, "shutdown")
	}
	switch {
	case fi.netflow != nil:
		st := fi.netflow.Stats()
		counter(mInputRecords, st.Records, name)
		counter(mTemplates, st.TemplatesAdded, name, "added")
		counter(mTemplates, st.TemplatesRefreshed, name, "refreshed")
		counter(mTemplates, st.TemplatesRefused, name, "refused")
		counter(mTemplates, st.TemplatesWithdrawn, name, "withdrawn")
		counter(mTemplates, st.TemplatesLoaded, name, "loaded")
		counter(mTemplates, st.TemplatesOverLimit, name, "over_limit")
		counter(mTemplates, st.TemplatesOverBytes, name, "over_bytes")
		counter(mSamplersRefused, st.SamplersOverLimit, name)
		counter(mCustomFields, st.CustomShort, name, "short")
		counter(mCustomFields, st.CustomCut, name, "cut")
		gauge(mStoreBytes, float64(st.StoreBytes), name)
		counter(mUntracked, st.ExportersOverLimit, name)
		counter(mEvicted, st.ExportersEvicted, name)
	case fi.sflow != nil:
		st := fi.sflow.Stats()
		counter(mInputRecords, st.Records, name)
		counter(mPacketCustom, st.CustomCut, name, "cut")
	}
	fi.exporters.Each(func(e *exporter.Entry) {
		label := entryOf(e)
		if e.Datagrams.Load() > 0 {
			counter(mExpDatagrams, e.Datagrams.Load(), name, label)
			counter(mExpRecords, e.Records.Load(), name, label)
			counter(mExpMalformed, e.Malformed.Load(), name, label)
		}
		if n := e.TemplateMisses.Load(); n > 0 {
			counter(mTemplateMisses, n, name, label)
		}
	})
}
