package log

import (
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: milliseconds since the Unix epoch in the
// high 48 bits and a logical counter in the low 16. Timestamps order events causally
// within a node and stay close to wall time.
type Timestamp uint64

const logicalBits = 16

// MakeTimestamp builds a Timestamp from wall milliseconds and a logical counter.
func MakeTimestamp(ms int64, logical uint16) Timestamp {
	return Timestamp(uint64(ms)<<logicalBits | uint64(logical))
}

// TimestampOf returns the Timestamp a time names, the inverse of Timestamp.Time: its
// milliseconds, and in its sub-millisecond nanoseconds the logical counter (capped). So a
// printed event time parses back to exactly that event's Timestamp, and a plain wall time
// names the first Timestamp of its millisecond.
func TimestampOf(t time.Time) Timestamp {
	return MakeTimestamp(t.UnixMilli(), uint16(min(t.Nanosecond()%int(time.Millisecond), 1<<logicalBits-1)))
}

// Millis returns the wall-clock part in milliseconds since the Unix epoch.
func (t Timestamp) Millis() int64 { return int64(uint64(t) >> logicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t) }

// Time returns the wall-clock part as a time.Time in UTC. The logical counter is added as
// nanoseconds so that distinct timestamps within one millisecond print distinctly.
func (t Timestamp) Time() time.Time {
	return time.UnixMilli(t.Millis()).Add(time.Duration(t.Logical())).UTC()
}

// String formats t as RFC 3339 with nanoseconds.
func (t Timestamp) String() string { return t.Time().Format(time.RFC3339Nano) }

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	last Timestamp
	now  func() time.Time
}

// NewClock returns a Clock reading wall time from now (time.Now when nil). Tests inject
// skew through now.
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now returns a Timestamp greater than every Timestamp it returned or observed before.
func (c *Clock) Now() Timestamp {
	wall := MakeTimestamp(c.now().UnixMilli(), 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// Observe advances the clock past a Timestamp seen from elsewhere (another node's event),
// so that later local readings order after it.
func (c *Clock) Observe(t Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t > c.last {
		c.last = t
	}
}
