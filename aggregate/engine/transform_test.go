package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// A mistake in the transformations is reported at its line and column in the
// file that holds it: the TOML configuration for a list written inline, the
// p2es plugin file, or a transformations file.
func TestTransformationErrorsAt(t *testing.T) {
	dir := t.TempDir()
	list := "[\n  {\"Conditions\": [{\"a\": 1, \"__op__\": \"~\"}], \"Actions\": []}\n]"
	check := func(c *config.Config, err error, want string) {
		t.Helper()
		if err == nil {
			_, err = New(c, Options{})
		}
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	}
	const bad = `: transformation #1: Conditions[0]: unknown operator "~" (want one of = != < <= > >= in notin)`

	toml := filepath.Join(dir, "flowdex.toml")
	c, err := config.Parse(toml, []byte("[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\ntransformations = '''\n"+list+"'''\n"))
	check(c, err, toml+":7:19"+bad)

	file := filepath.Join(dir, "transformations.json")
	if err := os.WriteFile(file, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = config.Parse(toml, []byte("[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\ntransformations = \"transformations.json\"\n"))
	check(c, err, file+":2:19"+bad)

	p2es := filepath.Join(dir, "plugin1.conf")
	p, err := config.ParseP2ES(p2es, []byte("{\n  \"ES_IndexName\": \"flows-%Y\",\n  \"Transformations\": "+list+"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	check(p.Config(), nil, p2es+":4:19"+bad)
}
