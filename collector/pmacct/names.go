package pmacct

import (
	"strings"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// valueType is how a CSV column's values become JSON values: as pmacct's
// JSON has them. Other columns (flow.JSONString) stay strings, as p2es keeps
// every CSV value.
type valueType = flow.JSONType

const (
	integer = flow.JSONInteger // a JSON integer when the value is one (pmacct's JSON has an integer here)
	real    = flow.JSONNumber  // a JSON number when the value is one (coordinates)
)

// csvName pairs a pmacct CSV header name with the JSON key pmacct writes for the
// same primitive, and the JSON type pmacct gives it.
type csvName struct {
	csv, json string
	typ       valueType
	// freeText marks strings that may hold the separator: a label chained in a
	// pre_tag_map is joined with ',' and an AS path can hold an AS_SET "{1,2}"
	freeText bool
}

// csvByName is pmacct's CSV header (print plugin and memory client write the
// same names) against its JSON keys, from the primitives table of
// aggregate/flow, which says where each name comes from.
var csvByName = func() map[string]*csvName {
	m := map[string]*csvName{}
	for p := range flow.Primitives() {
		if in := p.Info(); in.CSV != "" {
			m[in.CSV] = &csvName{csv: in.CSV, json: in.JSON, typ: in.Kind.JSONType(), freeText: in.FreeText}
		}
	}
	return m
}()

// lookupCSV returns pmacct's entry for a CSV header name, in any letter case.
func lookupCSV(name string) *csvName {
	if n, ok := csvByName[name]; ok {
		return n
	}
	return csvByName[strings.ToUpper(name)]
}

// lookupCSVBytes is lookupCSV without allocating, for names up to 64 bytes.
func lookupCSVBytes(name []byte) *csvName {
	if n, ok := csvByName[string(name)]; ok {
		return n
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return csvByName[string(buf[:len(name)])]
}
