package config

import (
	"testing"
	"time"
)

const retentionBase = "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\n"

func TestRetentionKeys(t *testing.T) {
	c, err := Parse("flowdex.toml", []byte(retentionBase+"retention = \"30d\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if es := c.Outputs["es"].(*ElasticsearchOutput); es.MaxAge.Duration != 30*24*time.Hour || es.Interval.Duration != time.Hour {
		t.Errorf("retention %v, interval %v (want 720h, default 1h)", es.MaxAge, es.Interval)
	}
	c, err = Parse("flowdex.toml", []byte(retentionBase+"retention = \"7d\"\nretention_interval = \"5m\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if es := c.Outputs["es"].(*ElasticsearchOutput); es.Interval.Duration != 5*time.Minute {
		t.Errorf("interval %v", es.Interval)
	}
	if c, err = Parse("flowdex.toml", []byte(retentionBase)); err != nil || c.Outputs["es"].(*ElasticsearchOutput).MaxAge.Duration != 0 {
		t.Errorf("no retention by default: %v %+v", err, c)
	}

	for _, tt := range []struct{ name, src, want string }{
		{"too short", retentionBase + "retention = \"30m\"\n", `flowdex.toml:6:1: output.es.retention: 30m0s is too short (expected 1h or more, e.g. "30d")`},
		{"interval too short", retentionBase + "retention = \"30d\"\nretention_interval = \"10s\"\n", `flowdex.toml:7:1: output.es.retention_interval: 10s is too short (expected 1m or more; default 1h)`},
		{"interval alone", retentionBase + "retention_interval = \"1h\"\n", `flowdex.toml:6:1: output.es.retention_interval: retention_interval without retention (expected retention, e.g. "30d")`},
		{"no time code", retentionBase + "index = \"flows\"\nretention = \"30d\"\n", `flowdex.toml:7:1: output.es.retention: cannot apply to index "flows": the name has no time code (such as %Y.%m.%d): there is one index, never an old one`},
		{"no year", retentionBase + "index = \"flows-%m.%d\"\nretention = \"30d\"\n", `flowdex.toml:7:1: output.es.retention: cannot apply to index "flows-%m.%d": the name has no year (%Y, %y or %G with %V): its indices repeat, retention cannot age them`},
		{"print", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.p]\ntype = \"print\"\nretention = \"30d\"\n", `flowdex.toml:6:1: output.p.retention: retention deletes Elasticsearch indices (expected it on an elasticsearch output)`},
		{"misspelt", retentionBase + "retension = \"30d\"\n", `flowdex.toml:6:1: output.es.retension: unknown key (did you mean "retention"?)`},
		{"bad duration", retentionBase + "retention = \"a month\"\n", `flowdex.toml:6:14: output.es.retention: invalid duration "a month" (expected e.g. "30s", "5m", "1h" or "30d")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("flowdex.toml", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
