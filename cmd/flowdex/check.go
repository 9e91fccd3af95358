package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"github.com/BurntSushi/toml"

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
	// a p2es file's transformations, shown inline
	for i := range cfg.Pipelines {
		p := &cfg.Pipelines[i]
		if data, _, _, _ := p.TransformationsJSON(cfg); data != nil && p.Transformations == "" {
			p.Transformations = string(data)
		}
	}
	// secrets are never printed
	for name, o := range cfg.Outputs {
		if o.Password != "" {
			o.Password = "********"
		}
		if o.APIKey != "" {
			o.APIKey = "********"
		}
		urls := make([]string, len(o.URLs))
		for i, u := range o.URLs {
			urls[i] = redactURL(u)
		}
		o.URLs = urls
		cfg.Outputs[name] = o
	}
	fmt.Fprintf(stdout, "# %s: configuration is valid; effective configuration:\n", cfg.File)
	if err := toml.NewEncoder(stdout).Encode(cfg); err != nil {
		fmt.Fprintln(stderr, "flowdex check:", err)
		return exitData
	}
	return exitOK
}

// redactURL hides a password given in a URL's user information.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "********")
	}
	return u.String()
}
