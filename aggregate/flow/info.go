package flow

import (
	"fmt"
	"iter"
	"net/netip"
	"reflect"
)

// Info is one row of the primitives table: what flowdex knows about a
// primitive.
type Info struct {
	Name     string // the aggregate name in pmacct's configuration; "" for a field that is no primitive
	JSON     string // the key pmacct writes it under
	CSV      string // pmacct's CSV header for it; "" when its CSV has none
	Kind     Kind   // how pmacct writes the value
	FreeText bool   // a string that may hold a CSV separator (pmacct does not quote CSV)
	// EmptyUnknown: an unknown address is written "" (pmacct's post-NAT
	// addresses), not "0.0.0.0"
	EmptyUnknown bool

	// Field is the Record field flowdex keeps the value in; "" for a
	// primitive flowdex reads in pmacct's output but does not aggregate on.
	// The field's Go type gives the width in a cache key.
	Field string
	// NetFlow says which NetFlow v9/IPFIX information elements carry the
	// value, for the decoder's plans; empty when the decoder finds it by
	// rules of its own or not at all.
	NetFlow IEs

	// Custom is the definition of a custom primitive (DefineCustom), nil for
	// pmacct's own.
	Custom *CustomField

	host Primitive // KindNet: the host address whose family an unknown net takes
	slot Slot      // where Field is
}

// IEs lists the NetFlow v9/IPFIX information elements (IANA numbers) that
// carry a primitive: the first of a list that a template has gives the value,
// the last occurrence of it in the template winning (nfacctd's handlers).
type IEs struct {
	Any  []uint16 // in records of any address family
	IPv4 []uint16 // in IPv4 records only
	IPv6 []uint16 // in IPv6 records only
}

// Kind is how pmacct writes a primitive's value.
type Kind uint8

const (
	KindText      Kind = iota // a string: labels, communities, AS paths, names
	KindUint                  // an unsigned integer
	KindHex                   // an unsigned integer as a string of hex digits (etype "800")
	KindIP                    // an address as a string, "0.0.0.0" when unknown
	KindNet                   // a network address as a string, unknown: the zero address of its host's family
	KindMAC                   // a MAC address as a string, "02:00:00:00:00:0a"
	KindProto                 // an IP protocol as a string: pmacct's name, else (or with print_num_protos) the number
	KindTCPFlags              // TCP flags OR-ed over an aggregate: a decimal string, or an array of names; a counter, not a key
	KindTime                  // a time with microseconds, in Format's form (Unix microseconds in a Record)
	KindStamp                 // a time bin, in Format's form without microseconds
	KindCounter               // a summed counter: flows, packets, bytes; not a key
	KindReal                  // a number with a fraction (GeoIP coordinates)
	KindLabel                 // a string from a pre_tag_map, kept as its LabelID in a Record
	KindDecimal               // an unsigned integer written as a string of decimal digits (custom u_int)
	KindString                // text kept in a Record's bytes, up to its first zero byte (custom str)
	KindRaw                   // bytes written as hex digits (custom raw)
	KindRD                    // a route distinguisher, "0:65000:1", kept as its 8 bytes in a uint64
	KindDirection             // a sampling direction, "i", "e" or "u"
	KindCoords                // a latitude, and the longitude under the next row's key: numbers as pmacct's jansson writes them
	KindClass                 // an application name kept as its LabelID: "unknown" when none
	KindInterned              // a text kept as its LabelID (BGP paths and communities): "" when none
	numKinds
)

// JSONType is the JSON type of a kind's values.
type JSONType uint8

const (
	JSONString  JSONType = iota
	JSONInteger          // pmacct writes an integer
	JSONNumber           // pmacct writes a number with a fraction
)

// kinds describes each kind: its JSON type, its Elasticsearch type ("": no
// mapping, the template's dynamic keyword), whether it can be part of a
// cache key, and the Go types a Record field of that kind may have.
var kinds = [numKinds]struct {
	json  JSONType
	es    string
	key   bool
	slots []slotType
}{
	KindText:      {JSONString, "", false, nil},
	KindUint:      {JSONInteger, "long", true, []slotType{slotU8, slotU16, slotU32, slotU64}},
	KindHex:       {JSONString, "keyword", true, []slotType{slotU8, slotU16, slotU32, slotU64}},
	KindIP:        {JSONString, "ip", true, []slotType{slotAddr, slotBytes}},
	KindNet:       {JSONString, "ip", true, []slotType{slotAddr}},
	KindMAC:       {JSONString, "", true, []slotType{slotMAC}},
	KindProto:     {JSONString, "keyword", true, []slotType{slotU8}},
	KindTCPFlags:  {JSONString, "keyword", false, []slotType{slotU8}},
	KindTime:      {JSONString, "date", true, []slotType{slotI64}},
	KindStamp:     {JSONString, "date", false, nil},
	KindCounter:   {JSONInteger, "long", false, []slotType{slotU64}},
	KindReal:      {JSONNumber, "double", false, nil},
	KindLabel:     {JSONString, "keyword", true, []slotType{slotU32}},
	KindDecimal:   {JSONString, "long", true, []slotType{slotU8, slotU16, slotU32, slotU64}},
	KindString:    {JSONString, "keyword", true, []slotType{slotBytes}},
	KindRaw:       {JSONString, "keyword", true, []slotType{slotBytes}},
	KindRD:        {JSONString, "keyword", true, []slotType{slotU64}},
	KindDirection: {JSONString, "keyword", true, []slotType{slotU8}},
	KindCoords:    {JSONNumber, "double", true, []slotType{slotCoords}},
	KindClass:     {JSONString, "keyword", true, []slotType{slotU32}},
	KindInterned:  {JSONString, "keyword", true, []slotType{slotU32}},
}

// JSONType returns the JSON type pmacct gives values of kind k.
func (k Kind) JSONType() JSONType { return kinds[k].json }

// ESType returns the Elasticsearch field type of kind k: "long", "ip", "date",
// "keyword", "double", or "" for strings the template's dynamic rule maps.
func (k Kind) ESType() string { return kinds[k].es }

// Aggregated reports whether flowdex aggregates on the primitive: it has an
// aggregate name and a Record field.
func (in Info) Aggregated() bool { return in.Name != "" && in.Field != "" }

// KeyWidth returns the most bytes the primitive takes in a cache key; 0 for
// one that is no key primitive (counters, and what flowdex does not keep).
func (in Info) KeyWidth() int {
	if !kinds[in.Kind].key {
		return 0
	}
	return in.slot.Width()
}

// Info returns p's row of the table.
func (p Primitive) Info() Info { return table[p] }

// Name returns the primitive's name in pmacct's aggregate list.
func (p Primitive) Name() string { return table[p].Name }

// JSONKey returns the key pmacct writes the primitive under.
func (p Primitive) JSONKey() string { return table[p].JSON }

// Slot returns where a Record keeps p; the zero Slot when it does not.
func (p Primitive) Slot() Slot { return table[p].slot }

// Primitives yields every primitive of the table, in pmacct's JSON order.
func Primitives() iter.Seq[Primitive] {
	return func(yield func(Primitive) bool) {
		for p := range numPrimitives {
			if !yield(p) {
				return
			}
		}
	}
}

// row starts a row of the table (see there).
func row(name, json, csv string, k Kind, field string) Info {
	return Info{Name: name, JSON: json, CSV: csv, Kind: k, Field: field}
}

func (in Info) nf(ies ...uint16) Info   { in.NetFlow.Any = ies; return in }
func (in Info) nf4(ies ...uint16) Info  { in.NetFlow.IPv4 = ies; return in }
func (in Info) nf6(ies ...uint16) Info  { in.NetFlow.IPv6 = ies; return in }
func (in Info) freeText() Info          { in.FreeText = true; return in }
func (in Info) emptyUnknown() Info      { in.EmptyUnknown = true; return in }
func (in Info) hostIs(p Primitive) Info { in.host = p; return in }

// writers says how Format.Document writes each primitive: what it needs of
// the table, in 32 bytes a row, derived at start.
var writers [numPrimitives]writer

type writer struct {
	json, json2 string // json2: KindCoords' longitude
	slot, host  Slot   // host: KindNet's host address
	op          writeOp
}

// writeOp is how Format.Document writes a primitive's value, from its kind and
// the Go type of its field.
type writeOp uint8

const (
	writeNone      writeOp = iota // not aggregated, or written after the stamps (flows)
	writeUint8                    // KindUint
	writeUint16                   //
	writeUint32                   //
	writeUint64                   //
	writeHex                      // KindHex
	writeIP                       // KindIP
	writeIPOrEmpty                // KindIP, "" when unknown
	writeNet                      // KindNet
	writeMAC                      // KindMAC
	writeProto                    // KindProto
	writeTCPFlags                 // KindTCPFlags, from the Counters
	writeTime                     // KindTime
	writeLabel                    // KindLabel
	writeDecimal                  // KindDecimal
	writeIPBytes                  // KindIP in bytes (custom ip)
	writeString                   // KindString
	writeRaw                      // KindRaw
	writeRD                       // KindRD
	writeDirection                // KindDirection
	writeCoords                   // KindCoords
	writeClass                    // KindClass
	writeInterned                 // KindInterned
)

// The Go types of Record fields, by slot type.
var slotTypes = map[reflect.Type]slotType{
	reflect.TypeFor[uint8]():      slotU8,
	reflect.TypeFor[uint16]():     slotU16,
	reflect.TypeFor[uint32]():     slotU32,
	reflect.TypeFor[uint64]():     slotU64,
	reflect.TypeFor[int64]():      slotI64,
	reflect.TypeFor[[6]byte]():    slotMAC,
	reflect.TypeFor[netip.Addr](): slotAddr,
	reflect.TypeFor[Coords]():     slotCoords,
}

// init finds the Record field of every row and checks that it suits the
// row's kind; a row that does not is a programming error, reported at start.
func init() {
	rt := reflect.TypeFor[Record]()
	if f := rt.Field(0); f.Name != "Key" || f.Offset != 0 {
		panic("flow: Record must start with its Key")
	}
	keySize := reflect.TypeFor[Key]().Size()
	for p := range numPrimitives {
		in := &table[p]
		if p.isCustom() {
			continue // DefineCustom's
		}
		if in.JSON == "" {
			panic(fmt.Sprintf("flow: primitive %d has no row", p))
		}
		if in.Field == "" {
			if in.NetFlow.Any != nil || in.NetFlow.IPv4 != nil || in.NetFlow.IPv6 != nil {
				panic(fmt.Sprintf("flow: %s: NetFlow elements but no Record field", in.JSON))
			}
			continue
		}
		sf, ok := rt.FieldByName(in.Field)
		if !ok {
			panic(fmt.Sprintf("flow: %s: Record has no field %s", in.JSON, in.Field))
		}
		off, t := uintptr(0), rt
		for _, i := range sf.Index {
			f := t.Field(i)
			off, t = off+f.Offset, f.Type
		}
		st, ok := slotTypes[t]
		n := 0
		if !ok && t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8 {
			st, ok, n = slotBytes, true, t.Len() // text of a fixed length: GeoIP's
		}
		if !ok {
			panic(fmt.Sprintf("flow: %s: field %s of type %s", in.JSON, in.Field, t))
		}
		k := kinds[in.Kind]
		compatible := false
		for _, s := range k.slots {
			compatible = compatible || s == st
		}
		if !compatible {
			panic(fmt.Sprintf("flow: %s: field %s of type %s cannot hold a kind %d value", in.JSON, in.Field, t, in.Kind))
		}
		if k.key && off+t.Size() > keySize {
			panic(fmt.Sprintf("flow: %s: field %s must be in Key", in.JSON, in.Field))
		}
		in.slot = Slot{off: uint16(off), typ: st, n: uint8(n)}
	}
	for p := range numPrimitives {
		writers[p] = writerOf(p)
	}
}

// writerOf derives how Format.Document writes p from its row; a row it
// cannot write is a programming error.
func writerOf(p Primitive) (w writer) {
	in := &table[p]
	if !in.Aggregated() {
		return w
	}
	if p > StampInserted && p != Flows {
		// pmacct master writes a few after flows (vrf_name...): Format.Document
		// would need to write them there
		panic(fmt.Sprintf("flow: %s: Format.Document writes the primitives before the stamps", in.JSON))
	}
	w.json, w.slot = in.JSON, in.slot
	switch in.Kind {
	case KindUint:
		w.op = [...]writeOp{slotU8: writeUint8, slotU16: writeUint16, slotU32: writeUint32, slotU64: writeUint64}[in.slot.typ]
	case KindHex:
		w.op = writeHex
	case KindIP:
		switch {
		case in.slot.typ == slotBytes:
			w.op = writeIPBytes
		case in.EmptyUnknown:
			w.op = writeIPOrEmpty
		default:
			w.op = writeIP
		}
	case KindNet:
		if table[in.host].Kind != KindIP || table[in.host].Field == "" {
			panic(fmt.Sprintf("flow: %s: a net needs a host address kept by flowdex", in.JSON))
		}
		w.op, w.host = writeNet, table[in.host].slot
	case KindMAC:
		w.op = writeMAC
	case KindProto:
		w.op = writeProto
	case KindTCPFlags:
		w.op = writeTCPFlags
	case KindTime:
		w.op = writeTime
	case KindLabel:
		w.op = writeLabel
	case KindDecimal:
		w.op = writeDecimal
	case KindString:
		w.op = writeString
	case KindRaw:
		w.op = writeRaw
	case KindRD:
		w.op = writeRD
	case KindDirection:
		w.op = writeDirection
	case KindCoords:
		w.op, w.json2 = writeCoords, table[p+1].JSON
	case KindInterned:
		w.op = writeInterned
	case KindClass:
		w.op = writeClass
	case KindCounter:
		if p != Flows {
			panic(fmt.Sprintf("flow: %s: Format.Document writes no counter but flows", in.JSON))
		}
		// written after the stamps, as pmacct does
	default:
		panic(fmt.Sprintf("flow: %s: flowdex cannot aggregate on kind %d", in.JSON, in.Kind))
	}
	return w
}

// CSVName returns pmacct's CSV header of the field it writes under the JSON
// key json (a custom primitive's is its name), "" for one the table does not
// have.
func CSVName(json string) string {
	if p, ok := ByJSON(json); ok {
		return table[p].CSV
	}
	return ""
}

// ByJSON returns the primitive pmacct writes under the JSON key json.
func ByJSON(json string) (Primitive, bool) {
	for p := range numPrimitives {
		if table[p].JSON == json {
			return p, true
		}
	}
	return 0, false
}
