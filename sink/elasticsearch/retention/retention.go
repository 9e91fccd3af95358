// Package retention deletes the indices of an Elasticsearch output that are
// older than its retention: the Curator job pmacct users ran from cron. It
// talks to Elasticsearch with the sink's client (elasticsearch.NewClient) and
// reads index names back with the sink's strftime patterns.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/internal/strftime"
	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// Configuration says how long the indices of a sink's pattern are kept,
// with the keys of the sink's [output.NAME] table.
type Configuration struct {
	// MaxAge: an index is deleted once the whole period its name covers (a
	// day for "flows-%Y.%m.%d") ended longer than MaxAge ago; 0: never.
	MaxAge setting.Duration `toml:"retention,omitempty"`
	// Interval between two runs of Start's loop.
	Interval setting.Duration `toml:"retention_interval,omitempty"`
	// Delay before the first run after Start: the daemon's start is busy enough.
	Delay time.Duration `toml:"-"`
	// Now is the clock the cutoff is taken from; nil means time.Now.
	Now func() time.Time `toml:"-"`
}

// DefaultConfiguration has no MaxAge (which must be set): runs every hour,
// the first a minute after Start.
func DefaultConfiguration() Configuration {
	return Configuration{Interval: setting.Duration{Duration: time.Hour}, Delay: time.Minute}
}

// Stats counts what retention did since New.
type Stats struct {
	Runs    uint64 // runs, dry runs included
	Deleted uint64 // indices deleted
	Errors  uint64 // runs that failed (listing or deleting)
}

// ExpiredIndex is an index whose period ended before the retention cutoff.
type ExpiredIndex struct {
	Name       string
	Start, End time.Time // the period its name covers, [Start, End)
}

// Report is what one run found.
type Report struct {
	Cutoff  time.Time      // indices whose period ended at or before it are expired
	Expired []ExpiredIndex // oldest first
	Deleted []string       // the expired indices deleted (none on a dry run)
	Kept    int            // indices of the pattern still within retention
	Ignored []string       // indices the listing returned that the pattern does not make
}

// Retention deletes the indices of an Elasticsearch sink's index pattern
// that are older than MaxAge: the Curator job pmacct users ran from cron.
// Only names the pattern renders are touched; a name that merely starts like
// them, hidden indices, aliases and data streams never are.
type Retention struct {
	cfg     elasticsearch.Configuration
	rc      Configuration
	client  *elasticsearch.Client
	match   *indexMatcher
	logger  *slog.Logger
	now     func() time.Time
	target  string // the list wildcard, e.g. "flows-*"
	chunk   int    // bytes of index names per DELETE
	started bool

	cancel context.CancelFunc
	done   sync.WaitGroup

	runs, deleted, errors atomic.Uint64
}

// New checks both configurations and returns an inert Retention: nothing is
// contacted before Run or Start. cfg is the sink's (nodes, credentials, TLS,
// Index and IndexLocation). A nil logger is slog.Default().
func New(cfg elasticsearch.Configuration, rc Configuration, logger *slog.Logger) (*Retention, error) {
	if logger == nil {
		logger = slog.Default()
	}
	client, err := elasticsearch.NewClient(cfg, 2)
	if err != nil {
		return nil, err
	}
	switch {
	case rc.MaxAge.Duration <= 0:
		return nil, fmt.Errorf("elasticsearch: retention must be positive, not %s", rc.MaxAge)
	case rc.Interval.Duration <= 0:
		return nil, fmt.Errorf("elasticsearch: retention interval must be positive, not %s", rc.Interval)
	case rc.Delay < 0:
		return nil, fmt.Errorf("elasticsearch: retention delay must not be negative, not %s", rc.Delay)
	}
	m, err := newIndexMatcher(cfg.Index, cfg.IndexLocation.Get())
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: retention: index %q: %w", cfg.Index, err)
	}
	now := rc.Now
	if now == nil {
		now = time.Now
	}
	return &Retention{cfg: cfg, rc: rc, client: client, match: m, logger: logger, now: now,
		target: m.p.Prefix() + "*", chunk: 2048}, nil
}

// Check reports why retention cannot apply to index names made by the
// strftime pattern index (nil if it can).
func Check(index string) error {
	_, err := newIndexMatcher(index, time.UTC)
	return err
}

// Run lists the indices of the pattern and deletes the expired ones, or
// only reports them when dryRun. The report holds what was found even when
// deleting failed part way.
func (r *Retention) Run(ctx context.Context, dryRun bool) (Report, error) {
	r.runs.Add(1)
	rep, err := r.run(ctx, dryRun)
	if err != nil {
		r.errors.Add(1)
	}
	return rep, err
}

func (r *Retention) run(ctx context.Context, dryRun bool) (Report, error) {
	rep := Report{Cutoff: r.now().Add(-r.rc.MaxAge.Duration)}
	names, err := r.list(ctx)
	if err != nil {
		return rep, err
	}
	for _, name := range names {
		start, end, ok := r.match.match(name)
		switch {
		case !ok:
			rep.Ignored = append(rep.Ignored, name)
		case !end.After(rep.Cutoff):
			rep.Expired = append(rep.Expired, ExpiredIndex{Name: name, Start: start, End: end})
		default:
			rep.Kept++
		}
	}
	slices.SortFunc(rep.Expired, func(a, b ExpiredIndex) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if dryRun {
		return rep, nil
	}
	// by explicit names (Elasticsearch 8 refuses wildcard deletes by default),
	// a few at a time so that the URL stays short
	for i := 0; i < len(rep.Expired); {
		var batch []string
		size := 0
		for ; i < len(rep.Expired) && (len(batch) == 0 || size+len(rep.Expired[i].Name) < r.chunk); i++ {
			batch = append(batch, rep.Expired[i].Name)
			size += len(rep.Expired[i].Name) + 1
		}
		if err := r.delete(ctx, batch); err != nil {
			return rep, err
		}
		rep.Deleted = append(rep.Deleted, batch...)
		r.deleted.Add(uint64(len(batch)))
	}
	return rep, nil
}

// list returns the open and closed indices whose names start with the
// pattern's prefix. Hidden indices (data streams' backing indices, system
// indices) are not listed; an alias resolves to the indices behind it, which
// the pattern then judges by their own names.
func (r *Retention) list(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout.Duration)
	defer cancel()
	status, body, err := r.client.Do(ctx, esapi.CatIndicesRequest{
		Index:           []string{r.target},
		Format:          "json",
		H:               []string{"index"},
		ExpandWildcards: "open,closed",
	})
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusNotFound:
		return nil, nil
	case status != http.StatusOK:
		return nil, fmt.Errorf("%s: listing indices %s: %s", r.client.Nodes(), r.target, elasticsearch.ErrorMessage(status, body))
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("%s: listing indices %s: %w", r.client.Nodes(), r.target, err)
	}
	names := make([]string, 0, len(rows))
	for _, row := range rows {
		names = append(names, row.Index)
	}
	slices.Sort(names)
	return names, nil
}

func (r *Retention) delete(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout.Duration)
	defer cancel()
	ignore := true // an index someone else deleted meanwhile is no failure
	status, body, err := r.client.Do(ctx, esapi.IndicesDeleteRequest{Index: names, IgnoreUnavailable: &ignore})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("%s: deleting %s: %s", r.client.Nodes(), strings.Join(names, ","), elasticsearch.ErrorMessage(status, body))
	}
	return nil
}

// Start runs retention in the background: after Delay, then every
// Interval, until Stop. A failed run is logged and counted, and the next
// one comes at its time.
func (r *Retention) Start(ctx context.Context) error {
	if r.started {
		return errors.New("elasticsearch: retention started twice")
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done.Add(1)
	go r.loop(ctx)
	return nil
}

func (r *Retention) loop(ctx context.Context) {
	defer r.done.Done()
	t := time.NewTimer(r.rc.Delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := r.Run(ctx, false)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logger.Error("elasticsearch: retention failed", "index", r.cfg.Index, "retention", r.rc.MaxAge,
				"deleted", rep.Deleted, "error", err)
		case len(rep.Deleted) > 0:
			r.logger.Info("elasticsearch: retention deleted expired indices", "index", r.cfg.Index, "retention", r.rc.MaxAge,
				"cutoff", rep.Cutoff, "deleted", rep.Deleted, "kept", rep.Kept)
		default:
			r.logger.Debug("elasticsearch: retention found nothing to delete", "index", r.cfg.Index, "kept", rep.Kept)
		}
		t.Reset(r.rc.Interval.Duration)
	}
}

// Stop ends Start's loop, interrupting a run in progress, and waits for it.
func (r *Retention) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.done.Wait()
}

// Stats returns the counters.
func (r *Retention) Stats() Stats {
	return Stats{Runs: r.runs.Load(), Deleted: r.deleted.Load(), Errors: r.errors.Load()}
}

// Configuration returns the retention settings.
func (r *Retention) Configuration() Configuration { return r.rc }

// ---------------------------------------------------------------------------
// Reading index names back

// indexMatcher recognises the names a pattern renders and the period of time
// each one covers. A name matches only if rendering the pattern at the start
// of the period it reads gives the name back, so invalid dates (month 13),
// other spellings (no padding where the pattern pads) and lookalikes never do.
type indexMatcher struct {
	p     *strftime.Pattern
	re    *regexp.Regexp
	codes []byte // the code of each capture group
	loc   *time.Location
	mode  dateMode
	unit  timeUnit // the finest unit within a day (0: a whole day)
}

type dateMode int

const (
	byYear       dateMode = iota + 1 // %Y
	byMonth                          // %Y %m
	byDay                            // %Y %m %d
	byYearDay                        // %Y %j
	byISOWeek                        // %G %V
	byISODay                         // %G %V %u
	bySundayWeek                     // %Y %U
	bySundayDay                      // %Y %U %w
	byMondayWeek                     // %Y %W
	byMondayDay                      // %Y %W %u
)

type timeUnit int

const (
	unitHour timeUnit = iota + 1
	unitMinute
	unitSecond
)

// digits is the regular expression of each code retention reads back, padded
// and with the "-" flag.
var digits = map[byte][2]string{
	'Y': {`\d{4}`, `\d{1,4}`}, 'G': {`\d{4}`, `\d{1,4}`},
	'C': {`\d{2}`, `\d{1,2}`}, 'y': {`\d{2}`, `\d{1,2}`}, 'g': {`\d{2}`, `\d{1,2}`},
	'm': {`\d{2}`, `\d{1,2}`}, 'd': {`\d{2}`, `\d{1,2}`}, 'j': {`\d{3}`, `\d{1,3}`},
	'H': {`\d{2}`, `\d{1,2}`}, 'I': {`\d{2}`, `\d{1,2}`}, 'M': {`\d{2}`, `\d{1,2}`}, 'S': {`\d{2}`, `\d{1,2}`},
	'U': {`\d{2}`, `\d{1,2}`}, 'W': {`\d{2}`, `\d{1,2}`}, 'V': {`\d{2}`, `\d{1,2}`},
	'e': {`[ \d]\d`, `\d{1,2}`}, 'k': {`[ \d]\d`, `\d{1,2}`}, 'l': {`[ \d]\d`, `\d{1,2}`},
	'u': {`\d`, `\d`}, 'w': {`\d`, `\d`},
	'P': {`am|pm`, `am|pm`},
}

// newIndexMatcher compiles the matcher of pattern src rendered in loc.
func newIndexMatcher(src string, loc *time.Location) (*indexMatcher, error) {
	p, err := strftime.Compile(src)
	if err != nil {
		return nil, err
	}
	if !p.HasCodes() {
		return nil, errors.New("the name has no time code (such as %Y.%m.%d): there is one index, never an old one")
	}
	if strings.HasPrefix(p.Prefix(), ".") {
		return nil, errors.New("names starting with \".\" are hidden or system indices: retention does not touch them")
	}
	m := &indexMatcher{p: p, loc: loc}
	var re strings.Builder
	re.WriteString("^")
	has := map[byte]bool{}
	add := func(code byte, nopad bool) error {
		d, ok := digits[code]
		if !ok {
			return fmt.Errorf("retention cannot read %%%c back from index names (it reads %%Y %%y %%C %%G %%g %%m %%d %%e %%j %%F %%H %%k %%I %%l %%P %%M %%S %%U %%W %%V %%u %%w)", code)
		}
		expr := d[0]
		if nopad {
			expr = d[1]
		}
		re.WriteString("(" + expr + ")")
		m.codes = append(m.codes, code)
		has[code] = true
		return nil
	}
	for _, o := range p.Ops() {
		switch {
		case o.Code == 0:
			re.WriteString(regexp.QuoteMeta(o.Lit))
		case o.Code == 'F': // %Y-%m-%d
			for i, c := range []byte{'Y', 'm', 'd'} {
				if i > 0 {
					re.WriteString("-")
				}
				_ = add(c, false)
			}
		default:
			if err := add(o.Code, o.NoPad); err != nil {
				return nil, err
			}
		}
	}
	re.WriteString("$")
	if m.re, err = regexp.Compile(re.String()); err != nil {
		return nil, err
	}

	year := has['Y'] || has['y']
	day := has['d'] || has['e']
	weekday := has['u'] || has['w']
	switch {
	case has['C'] && !has['y'] && !has['Y']:
		return nil, errors.New("%C needs %y: a century is not a period retention can age")
	case (has['G'] || has['g']) && has['V']:
		m.mode = byISOWeek
		if weekday {
			m.mode = byISODay
		}
	case has['V']:
		return nil, errors.New("%V (ISO week) needs %G (ISO year): with %Y, the last days of December fall in week 01")
	case !year:
		return nil, errors.New("the name has no year (%Y, %y or %G with %V): its indices repeat, retention cannot age them")
	case has['m'] && day:
		m.mode = byDay
	case has['j']:
		m.mode = byYearDay
	case has['m']:
		m.mode = byMonth
	case has['U']:
		m.mode = bySundayWeek
		if weekday {
			m.mode = bySundayDay
		}
	case has['W']:
		m.mode = byMondayWeek
		if weekday {
			m.mode = byMondayDay
		}
	case day || weekday:
		return nil, errors.New("a day without its month (%m) or week (%U, %W): retention cannot tell the date")
	default:
		m.mode = byYear
	}
	hour := has['H'] || has['k']
	hour12 := has['I'] || has['l']
	switch {
	case hour12 && !has['P'] && !hour:
		return nil, errors.New("%I/%l (12-hour clock) need %P (am/pm): retention cannot tell the hour")
	case hour || hour12:
		m.unit = unitHour
		if has['M'] {
			m.unit = unitMinute
			if has['S'] {
				m.unit = unitSecond
			}
		}
	case has['M'] || has['S']:
		return nil, errors.New("minutes or seconds without the hour (%H): retention cannot tell the time")
	}
	if m.unit != 0 && m.mode != byDay && m.mode != byYearDay && m.mode != byISODay && m.mode != bySundayDay && m.mode != byMondayDay {
		return nil, errors.New("a time of day without the day: retention cannot tell the time")
	}
	return m, nil
}

// match reports whether name is one the pattern renders, and the period of
// time it covers.
func (m *indexMatcher) match(name string) (start, end time.Time, ok bool) {
	if strings.HasPrefix(name, ".") {
		return start, end, false
	}
	sub := m.re.FindStringSubmatch(name)
	if sub == nil {
		return start, end, false
	}
	var v [128]int
	var set [128]bool
	for i, code := range m.codes {
		if set[code] {
			continue // a repeated code: the render below checks they agree
		}
		s := strings.TrimSpace(sub[i+1])
		var n int
		switch {
		case code == 'P' && s == "pm":
			n = 1
		case code == 'P':
			n = 0
		default:
			var err error
			if n, err = strconv.Atoi(s); err != nil {
				return start, end, false
			}
		}
		v[code], set[code] = n, true
	}
	twoDigits := func(y int) int { // Python's strptime pivot
		if y < 69 {
			return 2000 + y
		}
		return 1900 + y
	}
	year := v['Y']
	switch {
	case set['Y']:
	case set['C']:
		year = v['C']*100 + v['y']
	default:
		year = twoDigits(v['y'])
	}
	hour, minute, second := v['H'], v['M'], v['S']
	switch {
	case set['H']:
	case set['k']:
		hour = v['k']
	case set['I']:
		hour = v['I']%12 + 12*v['P']
	case set['l']:
		hour = v['l']%12 + 12*v['P']
	}
	date := func(y int, mo time.Month, d int) time.Time {
		return time.Date(y, mo, d, hour, minute, second, 0, m.loc)
	}
	weekdayMon := (v['u'] + 6) % 7 // 0 = Monday; %u is 1-7
	if set['w'] {
		weekdayMon = (v['w'] + 6) % 7 // %w is 0 (Sunday) - 6
	}
	weekdaySun := (weekdayMon + 1) % 7 // 0 = Sunday
	jan1 := time.Date(year, 1, 1, 0, 0, 0, 0, m.loc)
	nextJan1 := time.Date(year+1, 1, 1, 0, 0, 0, 0, m.loc)
	// week n of a year whose weeks start on first (a weekday): week 0 is
	// the days before the first such day; the last week ends with the year
	week := func(n int, first time.Weekday) (time.Time, time.Time) {
		firstDay := 1 + (int(first)-int(jan1.Weekday())+7)%7
		s := time.Date(year, 1, firstDay+7*(n-1), 0, 0, 0, 0, m.loc)
		e := time.Date(year, 1, firstDay+7*n, 0, 0, 0, 0, m.loc)
		if s.Before(jan1) {
			s = jan1
		}
		if e.After(nextJan1) {
			e = nextJan1
		}
		return s, e
	}
	isoMonday := func() time.Time { // of week V of ISO year G
		y := v['G']
		if !set['G'] {
			y = twoDigits(v['g'])
		}
		jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, m.loc)
		return time.Date(y, 1, 4-(int(jan4.Weekday())+6)%7+7*(v['V']-1), 0, 0, 0, 0, m.loc)
	}
	var nextDay bool // the period is a day or part of one
	switch m.mode {
	case byYear:
		start, end = jan1, nextJan1
	case byMonth:
		start, end = date(year, time.Month(v['m']), 1), date(year, time.Month(v['m'])+1, 1)
	case byDay:
		d := v['d']
		if set['e'] {
			d = v['e']
		}
		start, nextDay = date(year, time.Month(v['m']), d), true
	case byYearDay:
		start, nextDay = date(year, 1, v['j']), true
	case byISOWeek:
		start = isoMonday()
		end = start.AddDate(0, 0, 7)
	case byISODay:
		mon := isoMonday()
		start, nextDay = date(mon.Year(), mon.Month(), mon.Day()+weekdayMon), true
	case bySundayWeek:
		start, end = week(v['U'], time.Sunday)
	case byMondayWeek:
		start, end = week(v['W'], time.Monday)
	case bySundayDay:
		first := 1 + (7-int(jan1.Weekday()))%7 // the first Sunday
		start, nextDay = date(year, 1, first+7*(v['U']-1)+weekdaySun), true
	case byMondayDay:
		first := 1 + (8-int(jan1.Weekday()))%7 // the first Monday
		start, nextDay = date(year, 1, first+7*(v['W']-1)+weekdayMon), true
	}
	if nextDay && m.unit == 0 {
		y, mo, d := start.Date()
		start = time.Date(y, mo, d, 0, 0, 0, 0, m.loc)
		end = time.Date(y, mo, d+1, 0, 0, 0, 0, m.loc)
	}
	// the name must be the one the pattern gives its period (this refuses
	// 2026.13.45, which time.Date would carry into 2027)
	if string(m.p.Render(nil, start)) != name {
		return start, end, false
	}
	if m.unit != 0 {
		// when clocks go back, an hour's name covers two hours: the period
		// runs from the first instant with the name to the first after it
		step := map[timeUnit]time.Duration{unitHour: time.Hour, unitMinute: time.Minute, unitSecond: time.Second}[m.unit]
		for string(m.p.Render(nil, start.Add(-step).In(m.loc))) == name {
			start = start.Add(-step)
		}
		for end = start.Add(step); string(m.p.Render(nil, end.In(m.loc))) == name; end = end.Add(step) {
		}
	}
	return start, end, true
}
