package main

import "testing"

func TestKeepSections(t *testing.T) {
	old := "# flowdex beside its peers\n\nWritten by `go run ./bench/harness -runs 3 -scale 1` on 2026-11-24 09:34 UTC. Every tool\n\n## Machine\n\n- old machine\n\n## netflow9\n\nold netflow9\n\n## ingest\n\nold ingest\n"
	now := "# flowdex beside its peers\n\nWritten by `go run ./bench/harness -runs 3 -scale 1 -only kafka` on 2026-12-07 17:00 UTC. Every tool\n\n## Machine\n\n- new machine\n\n## ingest\n\nnew ingest\n\n## kafka\n\nnew kafka\n"
	got := keepSections(now, old)
	want := now + "\n## netflow9\n\n_Not measured by the run above: kept from the run of 2026-11-24 09:34 UTC._\n\nold netflow9\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// a section kept once keeps its first date, not the date of the file it was kept in
	again := keepSections(now, "Written by `x` on 2026-12-01 00:00 UTC. x\n"+got[len(now):])
	if again != want {
		t.Fatalf("kept twice:\n%s\nwant:\n%s", again, want)
	}
	if keepSections(now, "") != now {
		t.Fatal("no previous file: the text should be unchanged")
	}
}
