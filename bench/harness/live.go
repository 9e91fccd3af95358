package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flowdex/flowdex/bench/gen"
	"github.com/flowdex/flowdex/collector/datagram"
)

// liveResult is the highest rate of NetFlow v9 sent over UDP on 127.0.0.1
// that each collector took without losing a flow, per search.
type liveResult struct {
	totals gen.Totals
	tools  []liveTool
}

type liveTool struct {
	name   string
	best   []float64 // flows/s, one per search
	trials []string  // what each trial saw
	err    error
}

// liveRates are the send rates tried, in flows per second, lowest first; a
// search stops at the first rate with a loss. Each trial sends for at least
// liveMinDuration, cycling through the input, so that a rate is sustained
// well past what socket buffers absorb.
var liveRates = []float64{250e3, 500e3, 1e6, 1.5e6, 2e6, 3e6, 4e6, 6e6}

const liveMinDuration = 5 * time.Second

func measureLive(bin, dir, esURL string, searches, records int) liveResult {
	os.MkdirAll(dir, 0o755)
	input, totals, err := write(dir, fmt.Sprintf("netflow9-%d.pcap", records), func(f *os.File) (gen.Totals, error) {
		return gen.WriteNetFlow(f, gen.NetFlow{Version: 9, Records: records, Keys: 50_000, PerDatagram: 25, TemplateEvery: 20, Seed: 6})
	})
	if err != nil {
		log.Fatalf("live: %v", err)
	}
	var payloads [][]byte
	if _, err := datagram.Replay(context.Background(), input, 0, func(d *datagram.Datagram) {
		payloads = append(payloads, bytes.Clone(d.Payload))
	}); err != nil {
		log.Fatalf("live: %v", err)
	}
	res := liveResult{totals: totals}
	collectors := []struct {
		name  string
		start func(port int, out string) (*exec.Cmd, error)
	}{
		{"flowdex (and indexing into Elasticsearch)", func(port int, out string) (*exec.Cmd, error) {
			conf := fmt.Sprintf(`[log]
level = "warn"
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
read_buffer = 67108864
queue = 65536
[[pipeline]]
aggregate = ["src_host", "dst_host", "src_port", "dst_port", "proto", "tos"]
refresh = "1s"
outputs = ["file", "es"]
[output.file]
type = "print"
file = %q
[output.es]
type = "elasticsearch"
urls = [%q]
index = "flowdex-bench-live-%%Y.%%m"
replicas = 0
`, port, out, esURL)
			path := filepath.Join(dir, "flowdex.toml")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return nil, err
			}
			return exec.Command(bin, "run", "-c", path), nil
		}},
		{"nfacctd", func(port int, out string) (*exec.Cmd, error) {
			conf := fmt.Sprintf("daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: %d\nnfacctd_pipe_size: 67108864\n"+
				"plugin_pipe_size: 268435456\nplugin_buffer_size: 1048576\nplugins: print[out]\naggregate[out]: %s\n"+
				"print_output[out]: json\nprint_output_file[out]: %s\nprint_refresh_time: 86400\nprint_cache_entries: 99991\n",
				port, strings.Join(aggregate, ", "), out)
			path := filepath.Join(dir, "nfacctd.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return nil, err
			}
			return exec.Command("nfacctd", "-f", path), nil
		}},
	}
	for _, c := range collectors {
		lt := liveTool{name: c.name}
		for s := range searches {
			best := 0.0
			for _, rate := range liveRates {
				out := filepath.Join(dir, "live.json")
				os.Remove(out)
				cycles := int(math.Ceil(liveMinDuration.Seconds() * rate / float64(totals.Records)))
				got, sent, err := liveTrial(c.start, out, payloads, cycles, rate)
				if err != nil {
					lt.err = err
					break
				}
				k := int64(cycles)
				want := gen.Totals{Records: totals.Records * k, Packets: totals.Packets * k, Bytes: totals.Bytes * k}
				achieved := float64(want.Records) / sent.Seconds() // the sender can fall short of the target
				line := fmt.Sprintf("search %d: target %.0f flows/s, sent %d flows at %.0f flows/s for %.2f s: %d of %d packets (summed over the flows) lost",
					s+1, rate, want.Records, achieved, sent.Seconds(), want.Packets-got.Packets, want.Packets)
				log.Printf("live/%s %s", c.name, line)
				lt.trials = append(lt.trials, line)
				if got.Packets != want.Packets || got.Bytes != want.Bytes {
					break
				}
				best = min(rate, achieved)
			}
			if lt.err != nil {
				break
			}
			lt.best = append(lt.best, best)
		}
		res.tools = append(res.tools, lt)
	}
	return res
}

// liveTrial starts a collector, sends every datagram cycles times at rate
// flows per second, stops it gracefully and sums what it wrote.
func liveTrial(start func(int, string) (*exec.Cmd, error), out string, payloads [][]byte, cycles int, rate float64) (gen.Totals, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return gen.Totals{}, 0, err
	}
	cmd, err := start(port, out)
	if err != nil {
		return gen.Totals{}, 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return gen.Totals{}, 0, err
	}
	time.Sleep(2 * time.Second) // listening
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return gen.Totals{}, 0, err
	}
	// pace in 1 ms steps: each step sends the datagrams due by then
	perSecond := rate / 25 // datagrams
	t0 := time.Now()
	for i := range cycles * len(payloads) {
		due := t0.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))
		if d := time.Until(due); d > time.Millisecond {
			time.Sleep(d)
		}
		conn.Write(payloads[i%len(payloads)])
	}
	sent := time.Since(t0)
	conn.Close()
	time.Sleep(2 * time.Second) // queues drain
	cmd.Process.Signal(syscall.SIGINT)
	werr := cmd.Wait()
	for { // pmacct's plugins, reparented to us
		if _, err := syscall.Wait4(-1, nil, 0, nil); err != nil {
			break
		}
	}
	if werr != nil {
		return gen.Totals{}, sent, fmt.Errorf("%v\n%s", werr, tail(stderr.String()))
	}
	got, err := sumFile(out)
	return got, sent, err
}

func freePort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
