// Package testscript is what the Go helpers of the project's server scripts
// (es.sh for Elasticsearch, kafka.sh for Kafka) share: where the scripts
// keep their downloads and state, and reading and running them.
package testscript

import (
	"os"
	"path/filepath"
	"strings"
)

// CacheDir mirrors the scripts' choice of cache directory for server
// (es, kafka): the variable env when set, /var/cache/flowdex/SERVER as
// root (the unprivileged user the servers run as cannot enter root's home),
// else ~/.cache/flowdex/SERVER.
func CacheDir(server, env string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return filepath.Join("/var/cache/flowdex", server)
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "flowdex", server)
	}
	return filepath.Join(os.TempDir(), "flowdex-"+server)
}

// WithoutEnv is env without the variables named.
func WithoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// LastLine is the last line of a script's output, which the scripts make
// their answer (a URL, a path).
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Tail is the last n lines of s, for errors quoting a log.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
