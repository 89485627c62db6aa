package log

import (
	"crypto/sha256"
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Op is what an event does to its document.
type Op uint8

// The operations. Their numeric values are part of the encoding and never change.
const (
	OpPut    Op = 1 // create or replace the whole document
	OpPatch  Op = 2 // JSON merge patch (RFC 7396) of an existing document
	OpDelete Op = 3 // delete; the history stays
	OpRedact Op = 4 // erase the bodies of the document's past versions; records who and why
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpPatch:
		return "patch"
	case OpDelete:
		return "delete"
	case OpRedact:
		return "redact"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ParseOp returns the Op named s ("put", "patch" or "delete").
func ParseOp(s string) (Op, bool) {
	switch s {
	case "put":
		return OpPut, true
	case "patch":
		return OpPatch, true
	case "delete":
		return OpDelete, true
	case "redact":
		return OpRedact, true
	}
	return 0, false
}

// Position is an event's place in the log: its shard and its index in that shard. Indexes
// start at 1 and have no gaps.
type Position struct {
	Shard uint64 `json:"shard"`
	Index uint64 `json:"index"`
}

func (p Position) String() string { return fmt.Sprintf("%d/%d", p.Shard, p.Index) }

// Hash is a SHA-256 digest.
type Hash [sha256.Size]byte

// Event is one committed change to one document. The fields down to RequestID are set when
// the write is proposed; Position, Version, PrevVersion, PrevHash and Clock are set when it
// is applied, from the shard's state, so every replica computes the same values.
type Event struct {
	Position    Position
	TS          Timestamp // hybrid logical clock; strictly increasing within a shard
	Origin      string    // datacenter where the write was accepted
	Op          Op
	Collection  string
	ID          string
	Version     uint64 // the document's version after this event (1 for the first write)
	PrevVersion uint64 // the version it replaced; 0 when the document did not exist
	Body        []byte // the document (put), the merge patch (patch), empty (delete); the body's SHA-256 once Redacted
	Redacted    bool   // the body was erased; Body holds its SHA-256, so the chain still verifies
	Principal   string // who wrote it; "anonymous" until authentication is configured
	RequestID   string // client request id (idempotency key)
	PrevHash    Hash   // Hash() of the previous event in the shard; zero for the first
	// Clock is the document's vector clock after this event: for a local write the
	// previous clock ticked at Origin, for a replicated event what the conflict rule
	// decided. Events written before clocks existed have none.
	Clock vclock.Clock
}

// BodyHash returns the SHA-256 of the body. The chain covers bodies only through this
// digest, so a body can be redacted later without breaking the chain.
func (e *Event) BodyHash() Hash {
	if e.Redacted {
		var h Hash
		copy(h[:], e.Body)
		return h
	}
	return sha256.Sum256(e.Body)
}

// Redact erases the body, keeping its hash.
func (e *Event) Redact() {
	if !e.Redacted {
		h := e.BodyHash()
		e.Body, e.Redacted = h[:], true
	}
}

// Hash returns the event's chain hash: SHA-256 over its metadata, its body hash, its
// vector clock and the previous event's hash. Every replica computes the same value for
// the same event. An event without a clock hashes exactly as before clocks existed
// ("aerolith-event-v1"); one with a clock hashes under "aerolith-event-v2" with the
// clock's binary form after the previous hash, so the chain covers clocks too.
func (e *Event) Hash() Hash {
	bh := e.BodyHash()
	b := make([]byte, 0, 128+len(e.Collection)+len(e.ID))
	if len(e.Clock) == 0 {
		b = append(b, "aerolith-event-v1"...)
	} else {
		b = append(b, "aerolith-event-v2"...)
	}
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
	if len(e.Clock) > 0 {
		b = e.Clock.Append(b)
	}
	return sha256.Sum256(b)
}
