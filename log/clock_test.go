package log_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// hashV1 is the chain hash as defined before vector clocks existed.
func hashV1(e *log.Event) log.Hash {
	bh := e.BodyHash()
	b := []byte("aerolith-event-v1")
	b = wire.AppendUvarint(b, e.Position.Shard)
	b = wire.AppendUvarint(b, e.Position.Index)
	b = wire.AppendUvarint(b, uint64(e.TS))
	b = wire.AppendString(b, e.Origin)
	b = append(b, byte(e.Op))
	b = wire.AppendString(b, e.Collection)
	b = wire.AppendString(b, e.ID)
	b = wire.AppendUvarint(b, e.Version)
	b = wire.AppendUvarint(b, e.PrevVersion)
	b = append(b, bh[:]...)
	b = wire.AppendString(b, e.Principal)
	b = wire.AppendString(b, e.RequestID)
	b = append(b, e.PrevHash[:]...)
	return sha256.Sum256(b)
}

// Events without a clock encode (version 1) and hash exactly as before clocks, so stored
// chains still verify; events with one round-trip it and their hash covers it.
func TestEventClock(t *testing.T) {
	c := log.NewCodec(0)
	defer c.Close()
	plain := testEvent(40)
	if plain.Hash() != hashV1(&plain) {
		t.Fatal("an event without a clock no longer hashes as version 1")
	}
	enc := c.Encode(&plain)
	if enc[0] != 1 {
		t.Fatalf("an event without a clock encodes as version %d", enc[0])
	}
	withEmpty := plain
	withEmpty.Clock = vclock.Clock{}
	if withEmpty.Hash() != plain.Hash() || string(c.Encode(&withEmpty)) != string(enc) {
		t.Fatal("an empty clock changes the event")
	}

	e := testEvent(700) // compressed body after the clock
	e.Clock = vclock.Clock{"eu-west": 3, "us-east": 1}
	enc = c.Encode(&e)
	if enc[0] != 2 {
		t.Fatalf("an event with a clock encodes as version %d", enc[0])
	}
	got, err := c.Decode(enc)
	if err != nil || !equalEvents(got, e) || vclock.Compare(got.Clock, e.Clock) != vclock.Equal || got.Hash() != e.Hash() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if e.Hash() == hashV1(&e) {
		t.Fatal("the hash does not cover the clock")
	}
	f := e
	f.Clock = vclock.Clock{"eu-west": 3, "us-east": 2}
	if f.Hash() == e.Hash() {
		t.Fatal("changing the clock does not change the hash")
	}
	for n := range enc {
		if _, err := c.Decode(enc[:n]); !errors.Is(err, log.ErrCorruptEvent) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	// Version 2 with an empty clock is not something Encode writes.
	bad := append([]byte{2}, c.Encode(&plain)[1:]...)
	if _, err := c.Decode(bad); !errors.Is(err, log.ErrCorruptEvent) {
		t.Fatalf("version 2 without a clock: %v", err)
	}
}
