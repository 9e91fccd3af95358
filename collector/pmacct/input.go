package pmacct

import (
	"errors"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// Configuration of a pmacct input: what pmacct writes, where, and how to read
// it.
type Configuration struct {
	// File is a print plugin's output file, or "-" for standard input
	// (`pmacct -s -O json -e`).
	File   string `toml:"file"`
	Format Format `toml:"format"` // json, csv or auto
	// Separator and Names are for CSV: print_output_separator, and whether
	// column names are lowercased (p2es) or mapped to pmacct's JSON keys.
	Separator Separator `toml:"csv_separator"`
	Names     Names     `toml:"csv_names"`
	// Timezone says how pmacct's default timestamps, which carry no offset,
	// are read: pmacct writes local time unless timestamps_utc is set.
	Timezone setting.Location `toml:"timezone"`
	// Follow keeps reading as pmacct rewrites the file at each purge or
	// appends to it (print_output_file_append), every Poll.
	Follow bool             `toml:"follow"`
	Poll   setting.Duration `toml:"poll"`
}

// DefaultConfiguration reads JSON or CSV as the first line says, p2es's CSV
// names, pmacct's local timestamps; a followed file is checked every second.
// The file is the user's to give.
func DefaultConfiguration() Configuration {
	return Configuration{
		Format:    Auto,
		Separator: ',',
		Names:     LowerNames,
		Timezone:  setting.Location{Location: time.Local},
		Poll:      setting.Duration{Duration: time.Second},
	}
}

// Validate reports every setting a reader could not use, naming its key.
func (c Configuration) Validate() error {
	var errs []error
	switch {
	case c.File == "":
		errs = append(errs, setting.Errorf("file", "missing (expected a path, or \"-\" for standard input)"))
	case c.Follow && c.File == "-":
		errs = append(errs, setting.Errorf("follow", "cannot follow standard input (expected a file path)"))
	}
	if c.Follow && c.Poll.Duration <= 0 {
		errs = append(errs, setting.Errorf("poll", "%v: expected a positive duration, e.g. \"1s\"", c.Poll.Duration))
	}
	return errors.Join(errs...)
}

// Options are the reader's options of the input.
func (c Configuration) Options() Options {
	return Options{Format: c.Format, Separator: byte(c.Separator), Names: c.Names}
}
