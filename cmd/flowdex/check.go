package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/flowdex/flowdex/aggregate/engine"
)

// cmdCheck validates a configuration as run would (transformations, lookup files,
// index patterns included) and prints it with every default filled in.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	if done, status := parseFlags(fs, args); done {
		return status
	}
	if cf.file == "" && cf.p2es == "" {
		fmt.Fprintln(stderr, "flowdex check: give -c flowdex.toml or --p2es-config plugin.conf")
		return exitUsage
	}
	cfg, err := cf.load(stderr)
	if err == nil {
		_, err = engine.New(cfg, engine.Options{Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitData
	}
	fmt.Fprintf(stdout, "# %s: configuration is valid; effective configuration:\n", cfg.File)
	if err := cfg.WriteEffective(stdout); err != nil {
		fmt.Fprintln(stderr, "flowdex check:", err)
		return exitData
	}
	return exitOK
}
