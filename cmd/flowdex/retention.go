package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine"
	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
)

// retentionClock, when set (tests), is the clock the command's cutoffs are
// taken from.
var retentionClock func() time.Time

// cmdRetention deletes, once, the indices of each elasticsearch output that
// are older than its retention, or lists them with --dry-run.
func cmdRetention(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	dryRun := fs.Bool("dry-run", false, "list the indices that would be deleted; delete nothing")
	only := fs.String("output", "", "only this elasticsearch `output` (default: every one with retention)")
	var override setting.Duration
	fs.TextVar(&override, "retention", setting.Duration{}, "the retention `age` (e.g. 30d), over the configuration's")
	if done, status := parseFlags(fs, args); done {
		return status
	}
	if cf.file == "" && cf.p2es == "" {
		fmt.Fprintln(stderr, "flowdex retention: give -c flowdex.toml or --p2es-config plugin.conf")
		return exitUsage
	}
	cfg, err := cf.load(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	names, err := retentionOutputs(cfg, *only, override.Duration)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex retention:", err)
		return exitUsage
	}
	logger, closer, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex retention:", err)
		return exitUsage
	}
	if closer != nil {
		defer closer.Close()
	}
	ctx, cancel := notifyContext()
	defer cancel()

	status := exitOK
	for _, name := range names {
		r, err := engine.Retention(cfg, name, logger)
		if err != nil {
			fmt.Fprintf(stderr, "flowdex retention: output %q: %v\n", name, err)
			return exitUsage
		}
		rep, err := r.Run(ctx, *dryRun)
		now := rep.Cutoff.Add(r.Configuration().MaxAge.Duration)
		if *dryRun {
			for _, e := range rep.Expired {
				fmt.Fprintf(stdout, "%s: would delete %s (ended %s, %s ago)\n", name, e.Name, e.End.UTC().Format(time.RFC3339), days(now.Sub(e.End)))
			}
		} else {
			ended := map[string]time.Time{}
			for _, e := range rep.Expired {
				ended[e.Name] = e.End
			}
			for _, n := range rep.Deleted {
				fmt.Fprintf(stdout, "%s: deleted %s (ended %s, %s ago)\n", name, n, ended[n].UTC().Format(time.RFC3339), days(now.Sub(ended[n])))
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "flowdex retention: output %q: %v\n", name, err)
			status = exitData
			continue
		}
		verb := "deleted"
		n := len(rep.Deleted)
		if *dryRun {
			verb, n = "would be deleted", len(rep.Expired)
		}
		fmt.Fprintf(stdout, "%s: %s %s, %d kept (index %s, retention %s: indices that ended before %s); %s starting like them left alone\n",
			name, count(n, "index", "indices"), verb, rep.Kept, cfg.Outputs[name].(*config.ElasticsearchOutput).Index, age(r.Configuration().MaxAge.Duration),
			rep.Cutoff.UTC().Format(time.RFC3339), count(len(rep.Ignored), "other index", "other indices"))
	}
	return status
}

// retentionOutputs names the outputs the command works on, with override
// (when not 0) set as their retention in cfg.
func retentionOutputs(cfg *config.Config, only string, override time.Duration) ([]string, error) {
	if override != 0 && override < time.Hour {
		return nil, fmt.Errorf("--retention %v is too short (expected 1h or more, e.g. 30d)", override)
	}
	var names []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Outputs)) {
		o, ok := cfg.Outputs[name].(*config.ElasticsearchOutput)
		if only != "" && name != only || !ok {
			continue
		}
		if override > 0 {
			o.MaxAge.Duration = override
			if err := retention.Check(o.Index); err != nil {
				return nil, fmt.Errorf("output %q: retention cannot apply to index %q: %w", name, o.Index, err)
			}
		}
		if o.MaxAge.Duration > 0 {
			o.Now = retentionClock
			names = append(names, name)
		}
	}
	switch {
	case len(names) > 0:
		return names, nil
	case only == "":
		return nil, errors.New("no elasticsearch output has retention (set retention in its [output.NAME] table, or give --retention)")
	}
	o, ok := cfg.Outputs[only]
	switch {
	case !ok:
		all := slices.Sorted(maps.Keys(cfg.Outputs))
		return nil, fmt.Errorf("no output %q (the outputs are: %v)", only, all)
	case o.Common().Type != "elasticsearch":
		return nil, fmt.Errorf("output %q is not an elasticsearch output", only)
	}
	return nil, fmt.Errorf("output %q has no retention (set retention in [output.%s], or give --retention)", only, only)
}

// days writes a duration in days when it is at least two, else in hours.
func days(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d >= 2*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return d.Round(time.Second).String()
}

// age writes a retention: in days when it is whole days.
func age(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
