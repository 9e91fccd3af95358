package gen

import (
	"bufio"
	"fmt"
	"io"
	"time"
)

// PmacctJSON describes pmacct print-plugin output: one JSON record per line,
// a 5-tuple with ToS, 5-minute bins.
type PmacctJSON struct {
	Records int
	Keys    int
	Seed    uint64
}

// WritePmacctJSON writes the records and returns their totals.
func WritePmacctJSON(out io.Writer, c PmacctJSON) (Totals, error) {
	w := bufio.NewWriterSize(out, 1<<20)
	r := rng(c.Seed)
	var t Totals
	for i := range c.Records {
		k := keyOf(r.IntN(c.Keys))
		packets := int64(1 + r.IntN(20))
		bytes := packets * int64(40+r.IntN(1460))
		bin := Start.Add(time.Duration(i/10000) * 5 * time.Minute)
		proto := "tcp"
		if k.proto == 17 {
			proto = "udp"
		}
		_, err := fmt.Fprintf(w, `{"event_type": "purge", "ip_src": "%d.%d.%d.%d", "ip_dst": "%d.%d.%d.%d", "port_src": %d, "port_dst": %d, "ip_proto": "%s", "tos": %d, "stamp_inserted": "%s", "stamp_updated": "%s", "packets": %d, "bytes": %d}`+"\n",
			k.src[0], k.src[1], k.src[2], k.src[3], k.dst[0], k.dst[1], k.dst[2], k.dst[3], k.sport, k.dport, proto, k.tos,
			bin.Format("2006-01-02 15:04:05"), bin.Add(5*time.Minute).Format("2006-01-02 15:04:05"), packets, bytes)
		if err != nil {
			return t, err
		}
		t.Records++
		t.Packets += packets
		t.Bytes += bytes
	}
	return t, w.Flush()
}
