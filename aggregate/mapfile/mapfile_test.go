package mapfile

import (
	"errors"
	"reflect"
	"testing"
)

func TestRead(t *testing.T) {
	const data = "! comment\n  # another\n\n\tset_tag=1  filter='udp and port 53' x=a=b\r\nlast=' q '\n"
	type line struct {
		n     int
		pairs []Pair
	}
	var got []line
	err := Read("m", []byte(data), func(n int, pairs []Pair) error {
		got = append(got, line{n, pairs})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []line{
		{4, []Pair{{"set_tag", "1", 2}, {"filter", "udp and port 53", 13}, {"x", "a=b", 38}}},
		{5, []Pair{{"last", " q ", 1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if c := want[0].pairs[1].ValueCol(); c != 20 {
		t.Errorf("filter's value at column %d", c)
	}
}

// Every line's mistake, the grammar's and the rule's, each at its place.
func TestReadErrors(t *testing.T) {
	data := "a=1 b\n=2\nc='open\nd=4\n"
	err := Read("m", []byte(data), func(n int, pairs []Pair) error {
		if pairs[0].Key == "d" {
			return Errorf(n, pairs[0].ValueCol(), "d: no")
		}
		return nil
	})
	want := "m:1:5: \"b\": expected key=value, without blanks around '=' (a comment is a line of its own, starting with '!' or '#')\n" +
		"m:2:1: \"=2\": expected key=value, without blanks around '=' (a comment is a line of its own, starting with '!' or '#')\n" +
		"m:3:3: a quote that is not closed (expected a value in single quotes)\n" +
		"m:4:3: d: no"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 1 {
		t.Errorf("not an *Error: %v", e)
	}
}
