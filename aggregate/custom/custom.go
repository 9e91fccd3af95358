// Package custom reads pmacct's aggregate_primitives file: the definitions
// of custom primitives (flow.CustomField), one a line, in pmacct's map
// grammar (aggregate/mapfile):
//
//	name=app_id     field_type=95         len=4    semantics=u_int
//	name=user       field_type=9:12235    len=vlen semantics=str
//
// field_type is an element's number, or PEN:number for an enterprise's; len
// is bytes, or vlen for a variable-length string or raw value; semantics is
// u_int, hex, ip, mac, str or raw.
//
// Where flowdex differs from pmacct 1.7.7 (the README, "Custom primitives",
// says the same and more): a line pmacct would log and skip refuses the
// file, with file:line:column and what was expected; lengths that pmacct
// takes but cannot write (a 3-byte u_int) are refused; a vlen value is kept
// up to flow.VarLenCap bytes.
//
// packet_ptr (up to 8 a definition, field_type then optional) says where
// captured packets hold the value: pmacctd's captures and sfacctd's sampled
// headers read it there (collector/packet), NetFlow from field_type.
package custom

import (
	"os"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/mapfile"
)

// Load reads and parses the file at path.
func Load(path string) ([]flow.CustomField, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// MaxDefinitions is how many definitions a file may have, as pmacct 1.7.7
// takes (it drops the later ones); only those the pipelines aggregate on are
// kept in records (flow.MaxCustom).
const MaxDefinitions = 63

// Parse parses a file's data; name prefixes the errors
// (file:line:column: ...). Each definition is checked as flow.DefineCustom
// takes it.
func Parse(name string, data []byte) ([]flow.CustomField, error) {
	var fs []flow.CustomField
	defined := map[string]int{} // name -> line
	err := mapfile.Read(name, data, func(n int, pairs []mapfile.Pair) error {
		f, at, err := parseRule(n, pairs)
		switch {
		case err != nil:
			return err
		case defined[f.Name] > 0:
			return mapfile.Errorf(n, at.ValueCol(), "%s: defined on line %d already", f.Name, defined[f.Name])
		case len(fs) == MaxDefinitions:
			return mapfile.Errorf(n, at.ValueCol(), "%s: a definition past the %d pmacct takes", f.Name, MaxDefinitions)
		}
		if err := flow.CheckCustom(f); err != nil {
			return mapfile.Errorf(n, at.ValueCol(), "%v", err)
		}
		defined[f.Name] = n
		fs = append(fs, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// keys are those of a definition, in the order messages give them.
const keys = "name, field_type, len, semantics"

// parseRule parses the pairs of line n; at is the name's pair.
func parseRule(n int, pairs []mapfile.Pair) (f flow.CustomField, at mapfile.Pair, _ error) {
	seen := map[string]mapfile.Pair{}
	ptrs := 0
	for _, t := range pairs {
		bad := func(expected string) error {
			return mapfile.Errorf(n, t.ValueCol(), "%s=%q: expected %s", t.Key, t.Value, expected)
		}
		if _, ok := seen[t.Key]; ok && t.Key != "packet_ptr" {
			return f, at, mapfile.Errorf(n, t.Col, "%s: twice in one definition", t.Key)
		}
		seen[t.Key] = t
		switch t.Key {
		case "name":
			// pmacct lower-cases names, as it does aggregate lists
			if v := strings.ToLower(t.Value); validName(v) {
				f.Name, at = v, t
			} else {
				return f, at, bad("a name of letters, digits and '_'")
			}
		case "field_type":
			pen, ie, hasPEN := strings.Cut(t.Value, ":")
			if !hasPEN {
				pen, ie = "", pen
			}
			// NetFlow v9 numbers go to 65535 (Cisco's NSEL elements are
			// 40000...); an IPFIX enterprise's to 32767
			bits := 16
			if hasPEN && pen != "0" {
				bits = 15
			}
			v, err := strconv.ParseUint(ie, 10, bits)
			if err != nil || v == 0 {
				return f, at, bad("an element's number from 1 to 65535, or PEN:number for an enterprise's, number to 32767 (e.g. 95, or 9:12235)")
			}
			f.IE = uint16(v)
			if hasPEN {
				p, err := strconv.ParseUint(pen, 10, 32)
				if err != nil {
					return f, at, bad("PEN:number, the enterprise's number up to 4294967295, 0 for IANA's (e.g. 9:12235)")
				}
				f.PEN = uint32(p)
			}
		case "len":
			if t.Value == "vlen" {
				f.Len = flow.VarLen
				break
			}
			v, err := strconv.ParseUint(t.Value, 10, 8)
			if err != nil || v == 0 {
				return f, at, bad("a length in bytes, or vlen")
			}
			f.Len = int(v)
		case "semantics":
			s, ok := flow.ParseSemantics(t.Value)
			if !ok {
				return f, at, bad("u_int, hex, ip, mac, str or raw")
			}
			f.Semantics = s
		case "packet_ptr":
			if ptrs == flow.MaxPointers {
				return f, at, mapfile.Errorf(n, t.Col, "packet_ptr: more than the %d a definition has", flow.MaxPointers)
			}
			p, ok := parsePointer(t.Value)
			if !ok {
				return f, at, bad("LAYER[:PROTO][+OFFSET], LAYER one of packet, mac, vlan, mpls, l3, l4, payload, PROTO (l3: an ethertype such as 0x800; l4: an IP protocol such as 6) and OFFSET numbers")
			}
			f.Pointers[ptrs] = p
			ptrs++
		default:
			return f, at, mapfile.Errorf(n, t.Col, "unknown key %q (expected one of %s)", t.Key, keys)
		}
	}
	for _, k := range strings.Split(keys, ", ") {
		switch _, ok := seen[k]; {
		case ok:
		case k == "field_type" && ptrs == 0:
			return f, at, mapfile.Errorf(n, 1, "no field_type or packet_ptr (a definition has name, len, semantics, and field_type, packet_ptr or both)")
		case k != "field_type":
			return f, at, mapfile.Errorf(n, 1, "no %s (a definition has each of %s)", k, keys)
		}
	}
	return f, at, nil
}

// parsePointer reads pmacct's LAYER[:PROTO][+OFFSET] (":" and "+" in either
// order); PROTO, an ethertype for l3 and an IP protocol for l4, is in hex
// when it has an x, as pmacct reads it.
func parsePointer(s string) (flow.PacketPointer, bool) {
	var p flow.PacketPointer
	end := strings.IndexAny(s, ":+")
	if end < 0 {
		end = len(s)
	}
	l, ok := flow.ParseLayer(s[:end])
	if !ok {
		return p, false
	}
	p.Layer = l
	var proto, offset bool
	for rest := s[end:]; rest != ""; {
		sep := rest[0]
		rest = rest[1:]
		end := strings.IndexAny(rest, ":+")
		if end < 0 {
			end = len(rest)
		}
		v := rest[:end]
		rest = rest[end:]
		switch {
		case sep == ':' && !proto && (l == flow.LayerL3 || l == flow.LayerL4):
			proto = true
			base, digits, bits := 10, v, 16
			if i := strings.IndexByte(v, 'x'); i >= 0 {
				base, digits = 16, v[i+1:]
				if v[:i] != "0" {
					return p, false
				}
			}
			if l == flow.LayerL4 {
				bits = 8
			}
			n, err := strconv.ParseUint(digits, base, bits)
			if err != nil {
				return p, false
			}
			p.Proto = uint16(n)
		case sep == '+' && !offset:
			offset = true
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return p, false
			}
			p.Offset = uint16(n)
		default:
			return p, false
		}
	}
	return p, true
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
