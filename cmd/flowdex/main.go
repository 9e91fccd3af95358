// Command flowdex collects network flows in pmacct's schema and indexes them into
// Elasticsearch.
//
//	flowdex run     -c flowdex.toml       the daemon
//	flowdex check   -c flowdex.toml       validate and print the effective configuration
//	flowdex ingest  [--p2es-config F]     one-shot pmacct JSON/CSV ingest, the p2es drop-in
//	flowdex retention -c flowdex.toml     delete indices past their retention (--dry-run lists them)
//	flowdex version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes
// from the module's build information.
var version = ""

// Exit statuses.
const (
	exitOK      = 0
	exitData    = 1 // something read was not delivered, or the run failed
	exitUsage   = 2 // bad command line or configuration
	exitStartup = 3 // an output could not be started (Elasticsearch unreachable, ...)
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdin, stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "ingest":
		return cmdIngest(args[1:], stdin, stdout, stderr)
	case "retention":
		return cmdRetention(args[1:], stdout, stderr)
	case "version", "--version", "-V":
		fmt.Fprintln(stdout, "flowdex", versionString())
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "flowdex: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  flowdex run     [-c flowdex.toml]         run the collector (no -c: pmacct JSON on stdin, printed to stdout)
  flowdex check   -c flowdex.toml | --p2es-config plugin.conf
                                            validate the configuration and print it with its defaults
  flowdex ingest  [-c flowdex.toml | --p2es-config plugin.conf] [--input FILE] [--format json|csv|auto]
                                            read pmacct JSON or CSV once and index it (the p2es drop-in)
  flowdex ingest  [-c flowdex.toml | --p2es-config plugin.conf] --dead-letter-replay FILE
                                            send the documents of a dead-letter file again
  flowdex retention -c flowdex.toml [--dry-run] [--output NAME] [--retention 30d]
                                            delete the indices older than each output's retention (Curator's job)
  flowdex version

Run "flowdex COMMAND -h" for the options of a command.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
}

// configFlags are the flags that choose a configuration.
type configFlags struct {
	file string
	p2es string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "c", "", "flowdex TOML configuration `file`")
	fs.StringVar(&c.file, "config", "", "same as -c")
	fs.StringVar(&c.p2es, "p2es-config", "", "pmacct-to-elasticsearch plugin configuration `file` (JSON)")
}

// load returns the configuration the flags name, or the default one.
func (c *configFlags) load(stderr io.Writer) (*config.Config, error) {
	switch {
	case c.file != "" && c.p2es != "":
		return nil, errors.New("give -c or --p2es-config, not both")
	case c.p2es != "":
		p, err := config.LoadP2ES(c.p2es)
		if err != nil {
			return nil, err
		}
		for _, w := range p.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if p.ReaderThreads != 2 {
			fmt.Fprintln(stderr, "note: ReaderThreads is accepted and not needed: flowdex reads faster than one thread of p2es could")
		}
		return p.Config(), nil
	case c.file != "":
		return config.Load(c.file)
	}
	return config.Default(), nil
}

// newLogger makes the process logger from the configuration.
func newLogger(cfg config.Log, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	var w io.Writer = stderr
	var closer io.Closer
	if cfg.File != "" && cfg.File != "-" {
		// 0640 (the group reads, as with syslog's files): warnings quote
		// records' values and exporters' addresses
		f, err := os.OpenFile(cfg.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w, closer = io.MultiWriter(f, stderr), f
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closer, nil
}

// parseFlags parses a command's flags; done is true when the command must end
// with status: -h asked for help (0) or a flag was wrong (2).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, status int) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		if fs.NArg() > 0 {
			fmt.Fprintf(fs.Output(), "flowdex %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
			return true, exitUsage
		}
		return false, exitOK
	case errors.Is(err, flag.ErrHelp):
		return true, exitOK
	}
	return true, exitUsage
}
