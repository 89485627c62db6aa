package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func records(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, []byte(fmt.Sprintf(`event-%d-{"body":"%0200d"}`, i, i)))
	}
	return out
}

func TestSegmentsRoundTripAndSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := Dir{Path: t.TempDir()}
	a, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, 7, 1, records(1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, 7, 101, records(101, 50)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, 7, 200, records(200, 5)); err == nil {
		t.Fatal("a segment that leaves a hole was accepted")
	}
	if a.Archived(7) != 150 || a.Archived(8) != 0 {
		t.Fatalf("archived: %d %d", a.Archived(7), a.Archived(8))
	}
	if r := a.CompressionRatio(); r < 2 {
		t.Fatalf("compression ratio %.2f on repetitive records", r)
	}
	a.Close()
	a, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got, err := a.Events(ctx, 7, 95, 20) // spans both segments
	if err != nil || len(got) != 20 {
		t.Fatalf("events: %d %v", len(got), err)
	}
	want := records(95, 20)
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: %q", 95+i, got[i])
		}
	}
	if tail, _ := a.Events(ctx, 7, 151, 10); len(tail) != 0 {
		t.Fatalf("past the archive: %d records", len(tail))
	}
	if st := a.Stats(); st.Items != 150 || st.Misses == 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// Drop deletes one shard's segments, files and index both, and no other shard's; the shard
// archives again from its first event, and Drop of an empty shard does nothing.
func TestDropDeletesOnlyItsShard(t *testing.T) {
	ctx := context.Background()
	dir := Dir{Path: t.TempDir()}
	a, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, shard := range []uint64{1, 2} {
		for from := 1; from <= 30; from += 10 {
			if err := a.Put(ctx, shard, uint64(from), records(from, 10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := a.Events(ctx, 2, 15, 5); err != nil { // one of shard 2's segments cached
		t.Fatal(err)
	}
	if err := a.Drop(ctx, 2); err != nil {
		t.Fatal(err)
	}
	check := func(when string, a *Archive) {
		t.Helper()
		if a.Archived(2) != 0 || a.Archived(1) != 30 {
			t.Fatalf("%s: archived %d (shard 1) and %d (shard 2), want 30 and 0", when, a.Archived(1), a.Archived(2))
		}
		if got, err := a.Events(ctx, 2, 15, 5); err != nil || len(got) != 0 {
			t.Fatalf("%s: events of the dropped shard: %d, %v", when, len(got), err)
		}
		if got, err := a.Events(ctx, 1, 1, 30); err != nil || len(got) != 30 {
			t.Fatalf("%s: events of shard 1: %d, %v", when, len(got), err)
		}
		names, err := dir.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if r, ok := parseName(n); ok && r.shard == 2 {
				t.Fatalf("%s: segment %s of the dropped shard is still stored", when, n)
			}
		}
		if len(names) != 3 {
			t.Fatalf("%s: %d files stored, want shard 1's 3: %v", when, len(names), names)
		}
		if st := a.Stats(); st.Items != 30 {
			t.Fatalf("%s: %d items, want 30", when, st.Items)
		}
	}
	check("after the drop", a)
	if err := a.Drop(ctx, 2); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if a, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	check("after a reopen", a)
	if err := a.Put(ctx, 2, 1, records(1, 10)); err != nil {
		t.Fatalf("the dropped shard does not archive again from event 1: %v", err)
	}
}

func TestCorruptSegmentIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := Dir{Path: t.TempDir()}
	a, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, 1, 1, records(1, 30)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	names, _ := dir.List(ctx)
	path := filepath.Join(dir.Path, names[0])
	orig, _ := os.ReadFile(path)
	for _, at := range []int{3, len(magic) + 5, len(orig) / 2, len(orig) - 3} {
		b := append([]byte(nil), orig...)
		b[at] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Events(ctx, 1, 1, 5); !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d flipped: %v", at, err)
		}
		a.Close()
	}
}
