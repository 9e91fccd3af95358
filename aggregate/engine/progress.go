package engine

import (
	"io"
	"os"
	"sync/atomic"

	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// Progress is how far the inputs that end by themselves have got: for a
// command to show while a large file is read.
type Progress struct {
	Records uint64 // pmacct records read and flow records decoded
	Read    int64  // bytes read of the files read once
	Size    int64  // their total size; 0 when unknown (standard input)
	// Finite: every input ends by itself (files, standard input, replays),
	// none waits on a socket, an interface or a followed file
	Finite bool
}

// Progress returns how far the inputs have got.
func (e *Engine) Progress() Progress {
	p := Progress{Records: e.counters.pmacctRecords.Load(), Read: e.bytesRead.Load(), Size: e.bytesTotal.Load(), Finite: true}
	for _, fi := range e.flowInputs {
		if capt := fi.capt.Load(); capt != nil {
			p.Records += capt.Stats().Records
		} else {
			p.Records += fi.records.Load()
		}
	}
	for _, in := range e.cfg.Inputs {
		switch c := in.(type) {
		case *config.PmacctInput:
			p.Finite = p.Finite && !c.Follow
		case *config.PcapInput:
			p.Finite = p.Finite && c.File != ""
		default:
			r := config.ReceiveOf(in)
			p.Finite = p.Finite && r != nil && r.Replay != ""
		}
	}
	return p
}

// openCounted opens a file read once, its bytes counted in the progress.
func (e *Engine) openCounted(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		e.bytesTotal.Add(st.Size())
	}
	return countedFile{f, &e.bytesRead}, nil
}

// countedFile counts the bytes read from a file.
type countedFile struct {
	*os.File
	n *atomic.Int64
}

func (c countedFile) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	c.n.Add(int64(n))
	return n, err
}
