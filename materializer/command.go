package materializer

import (
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Write is one document write inside a Command.
type Write struct {
	Op          log.Op
	Collection  string
	ID          string
	Body        []byte // document (put) or merge patch (patch)
	IfMatch     uint64 // with HasIfMatch: the live version must equal it (0: must not exist)
	HasIfMatch  bool
	IfNoneMatch bool   // the document must not exist (create only)
	RequestID   string // idempotency key; a write with a known key is answered, not applied
	// Resolves names the siblings of a keep-both conflict this write replaces (SiblingID
	// of each). A write to a document with siblings must name all of them.
	Resolves []string
	// Clock, when set, is the document's clock after the write, taken as is instead of
	// ticking the current one: replay re-appends recorded events with it.
	Clock vclock.Clock
}

// IndexOpKind says what an IndexOp does.
type IndexOpKind uint8

// The index operations. Values are part of the encoding.
const (
	IndexCreate   IndexOpKind = 1 // define an index; it starts building
	IndexDrop     IndexOpKind = 2 // remove an index and its entries
	IndexBackfill IndexOpKind = 3 // add entries for the next Limit documents after After
)

// IndexOp changes a secondary index of one collection in the command's shard. Index
// definitions travel through the log like writes, so every replica agrees on them.
type IndexOp struct {
	Kind       IndexOpKind
	Collection string
	Name       string
	Fields     []string // IndexCreate: dotted paths
	After      string   // IndexBackfill: the backfill position the proposer saw
	Limit      uint64   // IndexBackfill: documents per step
}

// Command is what the gateway proposes: writes to one shard, applied all or none, or one
// index operation, or events of other datacenters (each decided on its own), or a
// collection's policy, with the metadata fixed at proposal time so that apply stays
// deterministic.
type Command struct {
	TS        log.Timestamp // hybrid logical clock reading at proposal
	Origin    string        // datacenter
	Principal string
	IdemTTL   uint64 // how long request ids are remembered, in milliseconds
	Writes    []Write
	Index     *IndexOp      // exclusive with the others
	Remote    []RemoteWrite // exclusive with the others
	Policy    *PolicyOp     // exclusive with the others
	// Retry, when set on a command of writes, names it so that a copy proposed again after
	// an unknown outcome is answered with the first copy's results instead of applying
	// twice. The outcome is remembered for RetryTTL milliseconds. The proposer sets it on
	// writes that carry no idempotency keys; it never appears in events.
	Retry    string
	RetryTTL uint64
}

// Status is the outcome of one write.
type Status uint8

// The statuses. Values are part of the result encoding.
const (
	StatusOK           Status = 1  // applied; the document existed
	StatusCreated      Status = 2  // applied; the document did not exist (or was deleted)
	StatusNotFound     Status = 3  // patch or delete of a missing document
	StatusPrecondition Status = 4  // If-Match / If-None-Match not met; Current is the live version
	StatusIdemReused   Status = 5  // the request id was used for another document
	StatusAborted      Status = 6  // another write of the same command failed
	StatusInvalid      Status = 7  // the body or patch does not make a JSON object
	StatusConflict     Status = 8  // an index of that name exists with other fields
	StatusStale        Status = 9  // a backfill step from a position the index has left
	StatusSeen         Status = 10 // a remote event already applied or dominated: dropped
	StatusSiblings     Status = 11 // the document has siblings the write did not name
)

// Applied reports whether the write took effect.
func (s Status) Applied() bool { return s == StatusOK || s == StatusCreated }

// WriteResult is the outcome of one write.
type WriteResult struct {
	Status   Status
	Version  uint64 // the document's version after the write
	Current  uint64 // with StatusPrecondition: the live version (0 when absent)
	TS       log.Timestamp
	Position log.Position
	Replayed bool // answered from the idempotency record, not applied again
}

const (
	commandVersion   byte = 1
	commandVersionV2 byte = 2 // v1 followed by resolves and clocks, remote writes, policy
	commandVersionV3 byte = 3 // v2 followed by the retry token and its lifetime
)

func (c *Command) needsV2() bool {
	if len(c.Remote) > 0 || c.Policy != nil {
		return true
	}
	for _, w := range c.Writes {
		if len(w.Resolves) > 0 || len(w.Clock) > 0 {
			return true
		}
	}
	return false
}

// EncodeCommand encodes c.
func EncodeCommand(c *Command) []byte {
	n := 32 + len(c.Origin) + len(c.Principal)
	for _, w := range c.Writes {
		n += 16 + len(w.Collection) + len(w.ID) + len(w.Body) + len(w.RequestID)
	}
	for _, r := range c.Remote {
		n += 64 + len(r.Collection) + len(r.ID) + len(r.Body) + len(r.Principal) + len(r.RequestID)
	}
	n += len(c.Retry)
	b := make([]byte, 0, n)
	v3 := c.Retry != ""
	v2 := v3 || c.needsV2()
	switch {
	case v3:
		b = append(b, commandVersionV3)
	case v2:
		b = append(b, commandVersionV2)
	default:
		b = append(b, commandVersion)
	}
	b = wire.AppendUvarint(b, uint64(c.TS))
	b = wire.AppendString(b, c.Origin)
	b = wire.AppendString(b, c.Principal)
	b = wire.AppendUvarint(b, c.IdemTTL)
	b = wire.AppendUvarint(b, uint64(len(c.Writes)))
	for _, w := range c.Writes {
		b = append(b, byte(w.Op))
		b = wire.AppendString(b, w.Collection)
		b = wire.AppendString(b, w.ID)
		b = wire.AppendBytes(b, w.Body)
		var flags byte
		if w.HasIfMatch {
			flags |= 1
		}
		if w.IfNoneMatch {
			flags |= 2
		}
		b = append(b, flags)
		b = wire.AppendUvarint(b, w.IfMatch)
		b = wire.AppendString(b, w.RequestID)
	}
	if c.Index == nil {
		b = append(b, 0)
	} else {
		ix := c.Index
		b = append(b, byte(ix.Kind))
		b = wire.AppendString(b, ix.Collection)
		b = wire.AppendString(b, ix.Name)
		b = wire.AppendUvarint(b, uint64(len(ix.Fields)))
		for _, f := range ix.Fields {
			b = wire.AppendString(b, f)
		}
		b = wire.AppendString(b, ix.After)
		b = wire.AppendUvarint(b, ix.Limit)
	}
	if v2 {
		b = appendV2(b, c)
	}
	if v3 {
		b = wire.AppendString(b, c.Retry)
		b = wire.AppendUvarint(b, c.RetryTTL)
	}
	return b
}

// DecodeCommand decodes a command.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	r := wire.NewReader(b)
	version := r.Byte()
	if r.Err() == nil && (version < commandVersion || version > commandVersionV3) {
		return c, fmt.Errorf("%w: command version %d", ErrCorruptCommand, version)
	}
	c.TS = log.Timestamp(r.Uvarint())
	c.Origin = r.String()
	c.Principal = r.String()
	c.IdemTTL = r.Uvarint()
	n := r.Uvarint()
	if n > uint64(len(b)) {
		return c, fmt.Errorf("%w: %d writes", ErrCorruptCommand, n)
	}
	c.Writes = make([]Write, 0, n)
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		w := Write{Op: log.Op(r.Byte()), Collection: r.String(), ID: r.String()}
		w.Body = append([]byte(nil), r.Bytes()...)
		flags := r.Byte()
		w.HasIfMatch, w.IfNoneMatch = flags&1 != 0, flags&2 != 0
		w.IfMatch = r.Uvarint()
		w.RequestID = r.String()
		c.Writes = append(c.Writes, w)
	}
	if kind := IndexOpKind(r.Byte()); kind != 0 {
		ix := &IndexOp{Kind: kind, Collection: r.String(), Name: r.String()}
		nf := r.Uvarint()
		if nf > uint64(len(b)) {
			return Command{}, fmt.Errorf("%w: %d index fields", ErrCorruptCommand, nf)
		}
		for i := uint64(0); i < nf && r.Err() == nil; i++ {
			ix.Fields = append(ix.Fields, r.String())
		}
		ix.After = r.String()
		ix.Limit = r.Uvarint()
		c.Index = ix
	}
	if version >= commandVersionV2 && r.Err() == nil {
		if err := readV2(r, &c, len(b)); err != nil {
			return Command{}, err
		}
	}
	if version == commandVersionV3 {
		c.Retry, c.RetryTTL = r.String(), r.Uvarint()
	}
	if err := r.Err(); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrCorruptCommand, err)
	}
	if r.Len() != 0 {
		return Command{}, fmt.Errorf("%w: trailing bytes", ErrCorruptCommand)
	}
	return c, nil
}

func appendWriteResult(b []byte, w WriteResult) []byte {
	b = append(b, byte(w.Status))
	b = wire.AppendUvarint(b, w.Version)
	b = wire.AppendUvarint(b, w.Current)
	b = wire.AppendUvarint(b, uint64(w.TS))
	b = wire.AppendUvarint(b, w.Position.Shard)
	return wire.AppendUvarint(b, w.Position.Index)
}

func readWriteResult(r *wire.Reader) WriteResult {
	return WriteResult{
		Status:   Status(r.Byte()),
		Version:  r.Uvarint(),
		Current:  r.Uvarint(),
		TS:       log.Timestamp(r.Uvarint()),
		Position: log.Position{Shard: r.Uvarint(), Index: r.Uvarint()},
	}
}

// EncodeResults encodes the results of one command.
func EncodeResults(rs []WriteResult) []byte {
	b := wire.AppendUvarint(make([]byte, 0, 1+len(rs)*24), uint64(len(rs)))
	for _, w := range rs {
		b = appendWriteResult(b, w)
		if w.Replayed {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// DecodeResults decodes what EncodeResults wrote.
func DecodeResults(b []byte) ([]WriteResult, error) {
	r := wire.NewReader(b)
	n := r.Uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d results", ErrCorruptCommand, n)
	}
	out := make([]WriteResult, 0, n)
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		w := readWriteResult(r)
		w.Replayed = r.Byte() == 1
		out = append(out, w)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: results: %v", ErrCorruptCommand, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: results: trailing bytes", ErrCorruptCommand)
	}
	return out, nil
}
