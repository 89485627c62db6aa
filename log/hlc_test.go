package log_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/log"
)

// fakeWall is a wall clock the test moves by hand, forwards or backwards.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeWall) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeWall) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestTimestampParts(t *testing.T) {
	ts := log.MakeTimestamp(1_700_000_000_123, 9)
	if ts.Millis() != 1_700_000_000_123 || ts.Logical() != 9 {
		t.Fatalf("parts of %d: %d ms, logical %d", ts, ts.Millis(), ts.Logical())
	}
	if got := ts.String(); got != "2023-11-14T22:13:20.123000009Z" {
		t.Fatalf("String() = %q", got)
	}
	at := time.UnixMilli(1_700_000_000_123)
	if log.TimestampOf(at) != log.MakeTimestamp(1_700_000_000_123, 0) {
		t.Fatal("TimestampOf disagrees with MakeTimestamp")
	}
	if !log.TimestampOf(at).Time().Equal(at) {
		t.Fatal("Time() of a logical-0 timestamp is not the wall time")
	}
}

func TestClockMonotonicWhenWallGoesBackwards(t *testing.T) {
	w := &fakeWall{t: time.UnixMilli(1_700_000_000_000)}
	c := log.NewClock(w.now)
	steps := []time.Duration{0, time.Millisecond, 0, 0, -time.Second, -time.Hour, 0, 2 * time.Hour, -time.Millisecond, 0}
	var last log.Timestamp
	for i, d := range steps {
		w.add(d)
		ts := c.Now()
		if ts <= last {
			t.Fatalf("step %d (wall %+v): Now() = %v (%d), not after %v (%d)", i, d, ts, ts, last, last)
		}
		if wall := log.TimestampOf(w.now()); ts < wall {
			t.Fatalf("step %d: Now() = %v is behind the wall clock %v", i, ts, wall)
		}
		last = ts
	}
	// Once the wall clock is ahead again, timestamps follow it with logical 0.
	w.add(24 * time.Hour)
	if ts := c.Now(); ts != log.TimestampOf(w.now()) {
		t.Fatalf("Now() = %v after the wall clock moved ahead, want %v", ts, log.TimestampOf(w.now()))
	}
}

func TestClockSameMillisecondUsesLogical(t *testing.T) {
	w := &fakeWall{t: time.UnixMilli(1_000)}
	c := log.NewClock(w.now)
	for i := 0; i < 5; i++ {
		ts := c.Now()
		if ts.Millis() != 1_000 || int(ts.Logical()) != i {
			t.Fatalf("reading %d: %d ms logical %d", i, ts.Millis(), ts.Logical())
		}
	}
}

func TestClockObserve(t *testing.T) {
	w := &fakeWall{t: time.UnixMilli(1_000_000)}
	c := log.NewClock(w.now)
	first := c.Now()

	remote := log.MakeTimestamp(5_000_000, 3) // another node, far ahead
	c.Observe(remote)
	if ts := c.Now(); ts <= remote {
		t.Fatalf("Now() = %v after Observe(%v), want later", ts, remote)
	}
	// Observing the past changes nothing.
	before := c.Now()
	c.Observe(first)
	if ts := c.Now(); ts != before+1 {
		t.Fatalf("Observe of an old timestamp moved the clock: %v then %v", before, ts)
	}
}

func TestClockConcurrentUnique(t *testing.T) {
	c := log.NewClock(nil)
	const goroutines, per = 8, 2000
	out := make([][]log.Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				out[g] = append(out[g], c.Now())
			}
		}()
	}
	wg.Wait()
	seen := make(map[log.Timestamp]bool, goroutines*per)
	for g, ts := range out {
		for i, v := range ts {
			if seen[v] {
				t.Fatalf("duplicate timestamp %v", v)
			}
			seen[v] = true
			if i > 0 && v <= ts[i-1] {
				t.Fatalf("goroutine %d: timestamps not increasing: %v then %v", g, ts[i-1], v)
			}
		}
	}
}
