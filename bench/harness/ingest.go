package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowdex/flowdex/bench/gen"
)

// ingestResult is pmacct JSON into Elasticsearch: flowdex ingest, p2es, and
// the ceiling (pre-built _bulk bodies posted by a minimal loader, create with
// an _id as flowdex does). The
// measure is documents per wall second: the server does most of the work.
type ingestResult struct {
	url    string
	totals gen.Totals
	tools  []measured
}

// measureIngest runs each loader runs times into a fresh index and checks
// the document count and the packet and byte sums in Elasticsearch.
func measureIngest(bin, dir, url string, runs, records int) ingestResult {
	res := ingestResult{url: url}
	os.MkdirAll(dir, 0o755)
	input, totals, err := write(dir, fmt.Sprintf("pmacct-%d.json", records), func(f *os.File) (gen.Totals, error) {
		return gen.WritePmacctJSON(f, gen.PmacctJSON{Records: records, Keys: 50_000, Seed: 5})
	})
	if err != nil {
		log.Fatalf("ingest: %v", err)
	}
	res.totals = totals
	p2es, p2esErr := p2esCommand(dir)
	p2esURL, stopProxy, err := typelessProxy(url)
	if err != nil {
		log.Fatalf("ingest: %v", err)
	}
	defer stopProxy()
	esPID := serverPID(url)
	// templates left by earlier runs would overlap the one flowdex installs
	esDo(url, http.MethodDelete, "/_index_template/flowdex-bench*", nil)
	var mappings json.RawMessage
	loaders := []struct {
		name string
		run  func(index string) (usage, error)
	}{
		{"flowdex ingest", func(index string) (usage, error) {
			conf := fmt.Sprintf("[log]\nlevel = \"warn\"\n[[input]]\ntype = \"pmacct\"\nfile = %q\n[output.es]\ntype = \"elasticsearch\"\nurls = [%q]\nindex = %q\nreplicas = 0\ntemplate_name = %q\n",
				input, url, index, benchTemplate)
			path := filepath.Join(dir, "flowdex.toml")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return usage{}, err
			}
			return runQuiet(exec.Command(bin, "ingest", "-c", path))
		}},
		{"p2es 0.3.2", func(index string) (usage, error) {
			if p2esErr != nil {
				return usage{}, p2esErr
			}
			// 0.3.2, the release on PyPI, requires ES_Type (see typelessProxy)
			conf := map[string]any{"ES_URL": p2esURL, "ES_IndexName": index, "ES_Type": "_doc", "ES_FlushSize": 5000, "InputFile": input,
				"InputFormat": "json", "LogFile": filepath.Join(dir, "p2es.log"), "ES_IndexTemplateFileName": "index.json"}
			b, _ := json.Marshal(conf)
			os.WriteFile(filepath.Join(dir, "bench.conf"), b, 0o644)
			os.WriteFile(filepath.Join(dir, "index.json"), indexBody(mappings), 0o644)
			return runQuiet(exec.Command(p2es, "--config-dir", dir, "bench"))
		}},
		{"ceiling (_bulk loader)", func(index string) (usage, error) { return bulkLoad(url, input, index, mappings) }},
	}
	// Rounds: each loader once per round, in turn, after a round that is not
	// counted. Elasticsearch gets faster as its JIT warms up and its caches
	// fill: timing one loader's runs after another's would favour the last.
	ms := make([]measured, len(loaders))
	for round := -1; round < runs; round++ {
		for li, l := range loaders {
			ms[li].tool = l.name
			if ms[li].err != nil {
				continue
			}
			if mappings == nil && l.name != "flowdex ingest" {
				// the others index into flowdex's mappings, so that Elasticsearch
				// does the same work for each (dynamic mappings would index every
				// string as text and keyword)
				if mappings, err = templateMappings(url, benchTemplate); err != nil {
					log.Fatalf("ingest: %v", err)
				}
			}
			index := fmt.Sprintf("flowdex-bench-%s-%d", strings.Fields(l.name)[0], round+1)
			esDo(url, http.MethodDelete, "/"+index, nil)
			before := processCPU(esPID)
			u, err := l.run(index)
			if esPID > 0 {
				u.Server = processCPU(esPID) - before
			}
			if err == nil {
				err = checkIndex(url, index, totals)
			}
			esDo(url, http.MethodDelete, "/"+index, nil)
			what := fmt.Sprintf("run %d", round+1)
			if round < 0 {
				what = "warm-up (not counted)"
			}
			if err != nil {
				ms[li].err = err
				log.Printf("ingest/%s %s: %v", l.name, what, err)
				continue
			}
			log.Printf("ingest/%s %s: wall %v, %.0f docs/s", l.name, what, u.Wall.Round(time.Millisecond), float64(totals.Records)/u.Wall.Seconds())
			if round >= 0 {
				ms[li].runs = append(ms[li].runs, u)
			}
		}
	}
	res.tools = ms
	return res
}

func runQuiet(cmd *exec.Cmd) (usage, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	u, err := run(cmd)
	if err != nil {
		return u, fmt.Errorf("%v\n%s", err, tail(stderr.String()))
	}
	return u, nil
}

// p2esCommand finds pmacct-to-elasticsearch, or installs it with pip in a
// virtual environment under dir, as its README says.
func p2esCommand(dir string) (string, error) {
	if p, err := exec.LookPath("pmacct-to-elasticsearch"); err == nil {
		return p, nil
	}
	venv := filepath.Join(dir, "p2es-venv")
	bin := filepath.Join(venv, "bin", "pmacct-to-elasticsearch")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if out, err := exec.Command("python3", "-m", "venv", venv).CombinedOutput(); err != nil {
		return "", fmt.Errorf("python3 -m venv (apt-get install python3-venv): %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(venv, "bin", "pip"), "install", "-q", "pmacct-to-elasticsearch==0.3.2").CombinedOutput(); err != nil {
		return "", fmt.Errorf("pip install pmacct-to-elasticsearch: %v\n%s", err, out)
	}
	return bin, nil
}

// typelessProxy forwards to url, rewriting the typed bulk URL p2es 0.3.2
// sends (/<index>/<type>/_bulk, removed in Elasticsearch 8; the release on
// PyPI requires ES_Type) to /<index>/_bulk, as Elasticsearch 7 read it.
func typelessProxy(url string) (string, func(), error) {
	target, err := neturl.Parse(url)
	if err != nil {
		return "", nil, err
	}
	typed := regexp.MustCompile(`^/([^/]+)/[^/]+/_bulk$`)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.URL.Path = typed.ReplaceAllString(r.In.URL.Path, "/$1/_bulk")
		r.Out.URL.RawPath = ""
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// bulkLoad posts the records as pre-built _bulk bodies of 5000 documents,
// two requests at a time: what the server takes at most from any client.
func bulkLoad(url, input, index string, mappings json.RawMessage) (usage, error) {
	f, err := os.Open(input)
	if err != nil {
		return usage{}, err
	}
	defer f.Close()
	// create with an _id, as flowdex sends (an id per record is what makes a
	// retried request harmless; auto-generated ids would be faster)
	var bodies [][]byte
	var body []byte
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		body = fmt.Appendf(body, `{"create":{"_index":%q,"_id":"line-%d"}}`+"\n", index, n)
		if body, err = appendWithTimestamp(body, sc.Bytes()); err != nil {
			return usage{}, fmt.Errorf("%s line %d: %v", input, n+1, err)
		}
		body = append(body, '\n')
		if n++; n%5000 == 0 {
			bodies, body = append(bodies, body), nil
		}
	}
	if len(body) > 0 {
		bodies = append(bodies, body)
	}
	if code, answer, err := esDo(url, http.MethodPut, "/"+index, indexBody(mappings)); err != nil || code != 200 {
		return usage{}, fmt.Errorf("creating %s: HTTP %d %v %.300s", index, code, err, answer)
	}
	start := time.Now()
	work := make(chan []byte)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for b := range work {
				code, answer, err := esDo(url, http.MethodPost, "/_bulk", b)
				if err == nil && (code != 200 || bytes.Contains(answer[:min(len(answer), 64)], []byte(`"errors":true`))) {
					err = fmt.Errorf("bulk: HTTP %d %.200s", code, answer)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	u := usage{Wall: time.Since(start)}
	select {
	case err := <-errs:
		return u, err
	default:
		return u, nil
	}
}

// checkIndex: the index holds every record, with the input's sums.
func checkIndex(url, index string, want gen.Totals) error {
	esDo(url, http.MethodPost, "/"+index+"/_refresh", nil)
	_, b, err := esDo(url, http.MethodPost, "/"+index+"/_search", []byte(`{"size":0,"track_total_hits":true,"aggs":{"p":{"sum":{"field":"packets"}},"b":{"sum":{"field":"bytes"}}}}`))
	if err != nil {
		return err
	}
	var r struct {
		Hits struct {
			Total struct{ Value int64 }
		}
		Aggregations struct{ P, B struct{ Value float64 } }
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("search: %v: %.200s", err, b)
	}
	if r.Hits.Total.Value != want.Records || int64(r.Aggregations.P.Value) != want.Packets || int64(r.Aggregations.B.Value) != want.Bytes {
		return fmt.Errorf("the index holds %d documents, %.0f packets, %.0f bytes; the input %d, %d, %d",
			r.Hits.Total.Value, r.Aggregations.P.Value, r.Aggregations.B.Value, want.Records, want.Packets, want.Bytes)
	}
	return nil
}

var esClient = &http.Client{Timeout: 5 * time.Minute}

func esDo(url, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := esClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// benchTemplate is the index template flowdex installs in the ingest scenario.
const benchTemplate = "flowdex-bench"

// templateMappings returns the mappings of an installed index template.
func templateMappings(url, name string) (json.RawMessage, error) {
	code, b, err := esDo(url, http.MethodGet, "/_index_template/"+name, nil)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("index template %s: HTTP %d %v %.300s", name, code, err, b)
	}
	var r struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Template struct {
					Mappings json.RawMessage `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.IndexTemplates) != 1 || len(r.IndexTemplates[0].IndexTemplate.Template.Mappings) == 0 {
		return nil, fmt.Errorf("index template %s: no mappings in %.300s (%v)", name, b, err)
	}
	return r.IndexTemplates[0].IndexTemplate.Template.Mappings, nil
}

// indexBody creates an index without replicas, with mappings when given.
func indexBody(mappings json.RawMessage) []byte {
	if mappings == nil {
		return []byte(`{"settings":{"number_of_replicas":0}}`)
	}
	return fmt.Appendf(nil, `{"settings":{"number_of_replicas":0},"mappings":%s}`, mappings)
}

// appendWithTimestamp appends a pmacct JSON line with the @timestamp flowdex
// gives it (stamp_inserted, read as UTC), so that the ceiling indexes the
// documents flowdex sends: the same fields for Elasticsearch to parse.
func appendWithTimestamp(dst, line []byte) ([]byte, error) {
	var rec struct {
		Stamp string `json:"stamp_inserted"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return dst, err
	}
	t, err := time.Parse(time.DateTime, rec.Stamp)
	if err != nil {
		return dst, err
	}
	line = bytes.TrimRight(line, " \r")
	if len(line) == 0 || line[len(line)-1] != '}' {
		return dst, fmt.Errorf("not a JSON object")
	}
	dst = append(dst, line[:len(line)-1]...)
	dst = append(dst, `,"@timestamp":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	return append(dst, `"}`...), nil
}

// serverPID is the process of the Elasticsearch at url when es.sh runs it
// (its plain 8), else 0: its CPU time is then not reported.
func serverPID(url string) int {
	out, err := exec.Command("sink/elasticsearch/estest/es.sh", "url", "8").Output()
	if err != nil || strings.TrimSpace(string(out)) != url {
		return 0
	}
	if out, err = exec.Command("sink/elasticsearch/estest/es.sh", "pid", "8").Output(); err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

// processCPU is the user and system time of a process so far (its own, not
// its children's), from /proc; 0 when it cannot be read.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// the fields after the command name, which is in parentheses and may hold spaces
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100
