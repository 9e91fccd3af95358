package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A replay's progress: every byte of the capture read, every record decoded
// counted, the inputs finite.
func TestProgress(t *testing.T) {
	pcap, err := filepath.Abs("../../collector/netflow/testdata/softflowd-v9.pcap")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(pcap)
	if err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, `[[input]]
name = "replay"
type = "netflow"
replay = "`+pcap+`"
[[pipeline]]
name = "flows"
aggregate = ["src_host", "dst_host"]
[output.print]
type = "print"
`, strings.NewReader(""))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := <-e.run(ctx); err != nil {
		t.Fatal(err)
	}
	p := e.Progress()
	decoded := e.flowInputs[0].netflow.Stats().Records
	if !p.Finite || p.Read != st.Size() || p.Size != st.Size() || p.Records != decoded || decoded == 0 {
		t.Errorf("progress %+v, want finite, %d bytes of %d, %d records", p, st.Size(), st.Size(), decoded)
	}
}
