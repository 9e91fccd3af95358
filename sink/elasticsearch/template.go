package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// esMappings maps pmacct's fields by the Elasticsearch type the primitives
// table (aggregate/flow) gives them; strings without a type (MACs, labels,
// AS paths...) become keywords through the dynamic template, and other
// numbers get Elasticsearch's dynamic long or float.
var esMappings = map[string]map[string]any{
	// Addresses, or "" (and "0.0.0.0"/"::") when pmacct has none:
	// ignore_malformed keeps the document when a value is not an address.
	"ip": {"type": "ip", "ignore_malformed": true},
	// pmacct's integers. No ignore_malformed: a counter that is not a number
	// is a broken document, better rejected (dead-lettered) than indexed
	// without it. (tag and tag2 are unsigned 64-bit in pmacct; values above
	// 2^63-1 do not fit, and unsigned_long is not in every distribution.)
	"long": {"type": "long"},
	// pmacct's times, in any of its five formats. pmacct prints "0000-00-00
	// 00:00:00.000000" for a missing one: ignore_malformed keeps the document.
	// Naive times are read as UTC by Elasticsearch; @timestamp carries the
	// right instant.
	"date": {"type": "date", "format": pmacctDateFormat, "ignore_malformed": true},
	// Declared so that their type does not depend on the first value a new
	// index sees: tcp_flags is a string ("27", pmacct <= 1.7.9), an integer
	// (1.8.1+) or an array of names; ip_proto a name or a number; etype hex.
	"keyword": {"type": "keyword"},
	// GeoIP coordinates: a first value of 51 would make them long otherwise.
	"double": {"type": "double"},
}

var (
	// enrichment's fields (aggregate/enrich): a geo_point per direction for
	// Kibana maps and geo queries, coordinates as doubles (a first value of 51
	// would make them long otherwise), names as keywords.
	geoPointFields      = []string{"location_ip_src", "location_ip_dst"}
	doubleFields        = []string{"lat_ip_src", "lon_ip_src", "lat_ip_dst", "lon_ip_dst"}
	enrichKeywordFields = []string{"country_ip_src", "country_ip_dst", "city_ip_src", "city_ip_dst",
		"pocode_ip_src", "pocode_ip_dst", "as_name_src", "as_name_dst", "port_src_name", "port_dst_name",
		"iface_in_name", "iface_in_desc", "iface_out_name", "iface_out_desc"}
)

// pmacctDateFormat covers pmacct's five time formats: the default and
// timestamps_utc (naive, with or without microseconds), timestamps_rfc3339 and
// rfc9557 (strict_date_optional_time), and timestamps_since_epoch (epoch_second,
// with or without a fraction).
const pmacctDateFormat = "yyyy-MM-dd HH:mm:ss||yyyy-MM-dd HH:mm:ss.SSSSSS||strict_date_optional_time||epoch_second"

type templateOptions struct {
	pattern         string
	priority        int
	shards          int
	replicas        int // -1: unset
	refreshInterval string
	labelMaps       bool // label is an object (Configuration.LabelMaps)
}

// buildTemplate returns the PUT _index_template body for pmacct's documents.
func buildTemplate(o templateOptions) []byte {
	props := map[string]any{
		"@timestamp": map[string]any{"type": "date"},
	}
	for p := range flow.Primitives() {
		if m, ok := esMappings[p.Info().Kind.ESType()]; ok {
			props[p.JSONKey()] = m
		}
	}
	if o.labelMaps {
		// its keys are the labels' own: strings, keywords by the dynamic rule
		props[flow.Label.JSONKey()] = map[string]any{"type": "object"}
	}
	// enrichment's own mappings last: they name some of pmacct's GeoIP
	// fields too, with the same types (a test checks)
	for _, f := range geoPointFields {
		props[f] = map[string]any{"type": "geo_point"}
	}
	for _, f := range doubleFields {
		props[f] = map[string]any{"type": "double"}
	}
	for _, f := range enrichKeywordFields {
		props[f] = map[string]any{"type": "keyword", "ignore_above": 8191}
	}
	mappings := map[string]any{
		"dynamic_templates": []any{
			map[string]any{"strings_as_keywords": map[string]any{
				"match_mapping_type": "string",
				// a keyword term is at most 32766 bytes; a longer value (a huge
				// as_path or comms) is kept in _source but not indexed
				"mapping": map[string]any{"type": "keyword", "ignore_above": 8191},
			}},
		},
		"properties": props,
	}
	tmpl := map[string]any{"mappings": mappings}
	settings := map[string]any{}
	if o.shards > 0 {
		settings["number_of_shards"] = o.shards
	}
	if o.replicas >= 0 {
		settings["number_of_replicas"] = o.replicas
	}
	if o.refreshInterval != "" {
		settings["refresh_interval"] = o.refreshInterval
	}
	if len(settings) > 0 {
		tmpl["settings"] = map[string]any{"index": settings}
	}
	return marshalTemplate(o.pattern, o.priority, tmpl)
}

// ignoredAddressFields returns the fields template maps as ip with
// ignore_malformed (the top-level properties of its mappings, as pmacct's
// documents are flat), in name order.
func ignoredAddressFields(template []byte) []string {
	var t struct {
		Template struct {
			Mappings struct {
				Properties map[string]struct {
					Type            string `json:"type"`
					IgnoreMalformed any    `json:"ignore_malformed"`
				} `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if json.Unmarshal(template, &t) != nil {
		return nil // built or checked by New: does not happen
	}
	var names []string
	for name, p := range t.Template.Mappings.Properties {
		if im := p.IgnoreMalformed; p.Type == "ip" && (im == true || im == "true") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func marshalTemplate(pattern string, priority int, tmpl any) []byte {
	body := map[string]any{
		"index_patterns": []string{pattern},
		"template":       tmpl,
		"_meta":          map[string]any{"managed_by": "flowdex"},
	}
	if priority != 0 {
		body["priority"] = priority
	}
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return append(b, '\n')
}

// mappingParams are the keys a typeless (Elasticsearch 7+) mappings object may
// hold at its top level; anything else holding "properties" is a mapping type.
var mappingParams = []string{
	"properties", "dynamic", "dynamic_templates", "date_detection", "dynamic_date_formats",
	"numeric_detection", "_source", "_routing", "_meta", "_field_names", "_size",
	"runtime", "enabled", "subobjects", "_data_stream_timestamp",
}

// indexBodyTemplate turns a p2es index-creation body ({"settings":…,
// "mappings":…, "aliases":…}) into a composable template for pattern.
func indexBodyTemplate(data []byte, pattern string, priority int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]json.RawMessage
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	for k := range body {
		if k != "settings" && k != "mappings" && k != "aliases" {
			return nil, fmt.Errorf("unexpected key %q: an index body has only settings, mappings and aliases", k)
		}
	}
	if raw, ok := body["mappings"]; ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("mappings: not an object: %v", err)
		}
		if _, ok := m["_default_"]; ok {
			return nil, errors.New(`mappings has "_default_": this is an index template for Elasticsearch 5 or 6, ` +
				`which Elasticsearch 7 and later refuse; use a typeless body ({"mappings": {"properties": …}}) ` +
				`such as p2es's distrib/new-index-template.json`)
		}
		if _, ok := m["_all"]; ok {
			return nil, errors.New(`mappings has "_all": this is an index template for Elasticsearch 5 or 6 (_all was removed in 7)`)
		}
		for k, v := range m {
			if slices.Contains(mappingParams, k) {
				continue
			}
			var inner map[string]json.RawMessage
			if json.Unmarshal(v, &inner) == nil {
				_, p := inner["properties"]
				_, d := inner["dynamic_templates"]
				_, s := inner["_source"]
				if p || d || s {
					return nil, fmt.Errorf("mappings has the mapping type %q: this is an index template for "+
						"Elasticsearch 5 or 6; Elasticsearch 7 and later take typeless mappings "+
						`({"mappings": {"properties": …}})`, k)
				}
			}
			return nil, fmt.Errorf("mappings: unknown parameter %q", k)
		}
	}
	tmpl := map[string]any{}
	for k, v := range body {
		tmpl[k] = v
	}
	return marshalTemplate(pattern, priority, tmpl), nil
}

// esError is the error object of an Elasticsearch answer.
type esError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// errorChain is an error object and its causes.
type errorChain struct {
	Type     string      `json:"type"`
	Reason   string      `json:"reason"`
	CausedBy *errorChain `json:"caused_by"`
}

// errorBody summarises an Elasticsearch error answer for a message.
func errorBody(status int, body []byte) string {
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && len(r.Error) > 0 {
		var e errorChain
		if json.Unmarshal(r.Error, &e) == nil && e.Type != "" {
			msg := fmt.Sprintf("HTTP %d: %s: %s", status, e.Type, e.Reason)
			last := e.Reason
			for c := e.CausedBy; c != nil; c = c.CausedBy {
				if c.Reason != "" && !strings.Contains(last, c.Reason) {
					msg += " (caused by " + c.Type + ": " + c.Reason + ")"
					last = c.Reason
				}
			}
			return msg
		}
		return fmt.Sprintf("HTTP %d: %s", status, strings.Trim(string(r.Error), `"`))
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	if s == "" {
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("HTTP %d: %s", status, s)
}
