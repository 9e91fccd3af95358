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
// takes but cannot write (a 3-byte u_int) are refused; packet_ptr (values
// read at offsets of captured packets) is refused, flowdex reads NetFlow
// v9/IPFIX elements only; a vlen value is kept up to flow.VarLenCap bytes.
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
	for _, t := range pairs {
		bad := func(expected string) error {
			return mapfile.Errorf(n, t.ValueCol(), "%s=%q: expected %s", t.Key, t.Value, expected)
		}
		if _, ok := seen[t.Key]; ok {
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
			return f, at, mapfile.Errorf(n, t.Col, "packet_ptr: pmacct's offsets in captured packets, which flowdex does not read yet (expected field_type, a NetFlow v9/IPFIX element)")
		default:
			return f, at, mapfile.Errorf(n, t.Col, "unknown key %q (expected one of %s)", t.Key, keys)
		}
	}
	for _, k := range strings.Split(keys, ", ") {
		if _, ok := seen[k]; !ok {
			return f, at, mapfile.Errorf(n, 1, "no %s (a definition has each of %s)", k, keys)
		}
	}
	return f, at, nil
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
