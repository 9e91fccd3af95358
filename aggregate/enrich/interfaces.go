package enrich

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/document"
)

// Interface is what the interfaces file says about one interface.
type Interface struct {
	Name, Description string
}

type ifaceKey struct {
	exporter netip.Addr // the zero Addr: any exporter ("*")
	index    uint32
}

// Interfaces maps (exporter, ifIndex) to interface names and descriptions.
type Interfaces struct {
	m map[ifaceKey]Interface
}

// LoadInterfaces reads a CSV file of "exporter,ifindex,name[,description]"
// lines. exporter is the address flows come from (peer_ip_src), or "*" for
// every exporter (an entry for the exporter itself wins). '#' starts a comment
// line; fields with commas are quoted, as in any CSV file.
func LoadInterfaces(path string) (*Interfaces, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	t := &Interfaces{m: map[ifaceKey]Interface{}}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &FileError{File: path, Line: pe.Line, Err: pe.Err}
			}
			return nil, errorf(path, err)
		}
		line, _ := r.FieldPos(0)
		bad := func(format string, args ...any) error {
			return &FileError{File: path, Line: line, Err: fmt.Errorf(format, args...)}
		}
		if len(rec) < 3 || len(rec) > 4 {
			return nil, bad("%d fields (expected exporter,ifindex,name[,description], e.g. 192.0.2.1,3,xe-0/0/1,\"transit: AS64500\")", len(rec))
		}
		var k ifaceKey
		if e := strings.TrimSpace(rec[0]); e != "*" {
			a, err := netip.ParseAddr(e)
			if err != nil {
				return nil, bad("%q is not an address (expected the exporter's address, as in peer_ip_src, or \"*\" for every exporter)", e)
			}
			k.exporter = a.Unmap()
		}
		idx, err := strconv.ParseUint(strings.TrimSpace(rec[1]), 10, 32)
		if err != nil {
			return nil, bad("%q is not an ifIndex (expected a number from 0 to 4294967295)", rec[1])
		}
		k.index = uint32(idx)
		if _, dup := t.m[k]; dup {
			return nil, bad("exporter %s ifIndex %d listed twice", strings.TrimSpace(rec[0]), idx)
		}
		in := Interface{Name: strings.TrimSpace(rec[2])}
		if len(rec) == 4 {
			in.Description = strings.TrimSpace(rec[3])
		}
		if in.Name == "" && in.Description == "" {
			return nil, bad("no name and no description")
		}
		t.m[k] = in
	}
}

// Len returns the number of interfaces.
func (t *Interfaces) Len() int { return len(t.m) }

// Lookup returns what is known of interface index of exporter.
func (t *Interfaces) Lookup(exporter netip.Addr, index uint32) (Interface, bool) {
	if in, ok := t.m[ifaceKey{exporter, index}]; ok {
		return in, true
	}
	in, ok := t.m[ifaceKey{netip.Addr{}, index}]
	return in, ok
}

var ifaceFields = [2]struct{ index, name, desc string }{
	{"iface_in", "iface_in_name", "iface_in_desc"},
	{"iface_out", "iface_out_name", "iface_out_desc"},
}

func (t *Interfaces) enrich(e *Enricher, d *document.Document, n *counts) {
	// without peer_ip_src only "*" entries can match
	exporter, _ := e.addr(d, "peer_ip_src")
	for _, f := range ifaceFields {
		v, ok := d.Get(f.index)
		if !ok {
			continue
		}
		idx, ok := v.AsInt()
		if !ok || idx < 0 || idx > 1<<32-1 {
			continue
		}
		n.ifaceLookups++
		in, ok := t.Lookup(exporter, uint32(idx))
		if !ok {
			continue
		}
		n.ifaceHits++
		if in.Name != "" {
			d.SetString(f.name, in.Name)
		}
		if in.Description != "" {
			d.SetString(f.desc, in.Description)
		}
	}
}
