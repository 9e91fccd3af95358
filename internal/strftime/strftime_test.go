package strftime

import (
	"strings"
	"testing"
	"time"
)

// The expected strings were produced by Python 3.11's datetime.strftime on
// Linux (glibc, C locale) for the same times in UTC.
const allCodes = "%a|%A|%b|%B|%c|%C|%d|%D|%e|%F|%f|%g|%G|%h|%H|%I|%j|%k|%l|%m|%M|%n|%p|%P|%r|%R|%s|%S|%t|%T|%u|%U|%V|%w|%W|%x|%X|%y|%Y|%z|%Z|%-C|%-d|%-e|%-g|%-G|%-H|%-I|%-j|%-k|%-l|%-m|%-M|%-S|%-U|%-V|%-W|%-y|%-Y|%%"

func TestStrftimeMatchesPython(t *testing.T) {
	cases := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "Mon|Monday|Jan|January|Mon Jan  1 00:00:00 2024|20|01|01/01/24| 1|2024-01-01|000000|24|2024|Jan|00|12|001| 0|12|01|00|\n|AM|am|12:00:00 AM|00:00|1704067200|00|\t|00:00:00|1|00|01|1|01|01/01/24|00:00:00|24|2024|+0000|UTC|20|1|1|24|2024|0|12|1|0|12|1|0|0|0|1|1|24|2024|%"},
		{time.Date(2024, 12, 31, 23, 59, 59, 123456000, time.UTC), "Tue|Tuesday|Dec|December|Tue Dec 31 23:59:59 2024|20|31|12/31/24|31|2024-12-31|123456|25|2025|Dec|23|11|366|23|11|12|59|\n|PM|pm|11:59:59 PM|23:59|1735689599|59|\t|23:59:59|2|52|01|2|53|12/31/24|23:59:59|24|2024|+0000|UTC|20|31|31|25|2025|23|11|366|23|11|12|59|59|52|1|53|24|2024|%"},
		{time.Date(2021, 1, 3, 13, 5, 9, 7000, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  3 13:05:09 2021|20|03|01/03/21| 3|2021-01-03|000007|20|2020|Jan|13|01|003|13| 1|01|05|\n|PM|pm|01:05:09 PM|13:05|1609679109|09|\t|13:05:09|7|01|53|0|00|01/03/21|13:05:09|21|2021|+0000|UTC|20|3|3|20|2020|13|1|3|13|1|1|5|9|1|53|0|21|2021|%"},
		{time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  1 12:00:00 2023|20|01|01/01/23| 1|2023-01-01|000000|22|2022|Jan|12|12|001|12|12|01|00|\n|PM|pm|12:00:00 PM|12:00|1672574400|00|\t|12:00:00|7|01|52|0|00|01/01/23|12:00:00|23|2023|+0000|UTC|20|1|1|22|2022|12|12|1|12|12|1|0|0|1|52|0|23|2023|%"},
		{time.Date(2026, 7, 4, 9, 30, 0, 0, time.UTC), "Sat|Saturday|Jul|July|Sat Jul  4 09:30:00 2026|20|04|07/04/26| 4|2026-07-04|000000|26|2026|Jul|09|09|185| 9| 9|07|30|\n|AM|am|09:30:00 AM|09:30|1783157400|00|\t|09:30:00|6|26|27|6|26|07/04/26|09:30:00|26|2026|+0000|UTC|20|4|4|26|2026|9|9|185|9|9|7|30|0|26|27|26|26|2026|%"},
	}
	p, err := Compile(allCodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got := string(p.Render(nil, c.t))
		if got != c.want {
			gs, ws := strings.Split(got, "|"), strings.Split(c.want, "|")
			codes := strings.Split(allCodes, "|")
			for i := range codes {
				if i < len(gs) && i < len(ws) && gs[i] != ws[i] {
					t.Errorf("%s: %s = %q, want %q", c.t, codes[i], gs[i], ws[i])
				}
			}
			if len(gs) != len(ws) {
				t.Errorf("%s: got %q, want %q", c.t, got, c.want)
			}
		}
	}
}

func TestStrftime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		pattern string
		t       time.Time
		want    string
	}{
		{"flows-%Y.%m.%d", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "flows-2024.01.01"},
		{"flows-%Y.%m.%d", time.Date(2023, 12, 31, 23, 0, 0, 0, cet), "flows-2023.12.31"},
		{"flows-%Y-%m-%d-%H", time.Date(2024, 3, 5, 7, 0, 0, 0, time.UTC), "flows-2024-03-05-07"},
		{"flows-%G-w%V", time.Date(2021, 1, 3, 0, 0, 0, 0, time.UTC), "flows-2020-w53"},
		{"flows-%y%j", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "flows-24060"},
		{"flows-%F", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "flows-2024-02-29"},
		{"netflow-%Y.%U", time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC), "netflow-2024.01"},
		{"netflow-%Y.%W", time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC), "netflow-2024.01"},
		{"flows-%s", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "flows-1704067200"},
		{"flows-%z", time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -(3*3600+30*60))), "flows--0330"},
		{"100%%-flows", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "100%-flows"},
		{"static", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "static"},
		{"", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), ""},
	}
	for _, tt := range tests {
		p, err := Compile(tt.pattern)
		if err != nil {
			t.Errorf("%q: %v", tt.pattern, err)
			continue
		}
		if got := string(p.Render(nil, tt.t)); got != tt.want {
			t.Errorf("%q at %s = %q, want %q", tt.pattern, tt.t, got, tt.want)
		}
	}
}

func TestStrftimeErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"flows-%Q", "unknown strftime code %Q"},
		{"flows-%Y.%m.%d-%i", "unknown strftime code %i"},
		{"flows-%é", "unknown strftime code %é"},
		{"flows-%-Q", "unknown strftime code %-Q"},
		{"flows-%", "a lone % at the end"},
		{"flows-%-", "a lone %- at the end"},
		{"flows-%-a", "the - flag does not apply to %a"},
		{"flows-%E", "unknown strftime code %E"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.pattern, err, tt.want)
		}
	}
}
