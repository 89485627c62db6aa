package pebble

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/vclock"
	pdb "github.com/cockroachdb/pebble/v2"
)

// Cross-datacenter records, inside each shard's range (so snapshots carry them and state
// digests cover them):
//
//	X coll 0x00 id                        a document's vector clock, the (origin time,
//	                                      origin datacenter) of its visible version, and its
//	                                      siblings when a keep-both conflict is open
//	H origin 0x00 shard stream            the highest index applied from one ordered stream
//	                                      of another datacenter (dedupe of replicated events)
//	P coll                                a collection's replication policy (opaque bytes)
const (
	kXDC       byte = 'X'
	kHighWater byte = 'H'
	kPolicy    byte = 'P'
)

// XDC is a document's cross-datacenter state.
type XDC struct {
	Clock  vclock.Clock  // the document's vector clock: the merge of every version it has seen
	TS     log.Timestamp // origin time of the visible version (its HLC time where it was written)
	Origin string        // datacenter that wrote the visible version
	// Siblings are the concurrent versions kept by a keep-both conflict, the visible one
	// included, in a deterministic order; empty when there is no open conflict.
	Siblings []Sibling
}

// Sibling is one of a document's concurrent versions.
type Sibling struct {
	Clock   vclock.Clock
	TS      log.Timestamp
	Origin  string
	Deleted bool
	Body    []byte // nil when Deleted
}

func xdcKey(shard uint64, coll, id string) []byte {
	return key(shard, kXDC, []byte(coll), []byte{0}, []byte(id))
}

func highWaterKey(shard uint64, origin string, srcShard uint64, stream uint32) []byte {
	return key(shard, kHighWater, []byte(origin), []byte{0}, u64(srcShard), binary.BigEndian.AppendUint32(nil, stream))
}

func policyKey(shard uint64, coll string) []byte { return key(shard, kPolicy, []byte(coll)) }

func encodeXDC(x XDC) []byte {
	b := make([]byte, 0, 32)
	b = x.Clock.Append(b)
	b = wire.AppendUvarint(b, uint64(x.TS))
	b = wire.AppendString(b, x.Origin)
	b = wire.AppendUvarint(b, uint64(len(x.Siblings)))
	for _, s := range x.Siblings {
		b = s.Clock.Append(b)
		b = wire.AppendUvarint(b, uint64(s.TS))
		b = wire.AppendString(b, s.Origin)
		if s.Deleted {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = wire.AppendBytes(b, s.Body)
	}
	return b
}

func decodeXDC(v []byte) (XDC, error) {
	r := wire.NewReader(v)
	var x XDC
	var err error
	if x.Clock, err = vclock.Read(r); err != nil {
		return XDC{}, fmt.Errorf("pebble: corrupt xdc record: %w", err)
	}
	x.TS = log.Timestamp(r.Uvarint())
	x.Origin = r.String()
	n := r.Uvarint()
	if n > uint64(len(v)) {
		return XDC{}, fmt.Errorf("pebble: corrupt xdc record: %d siblings", n)
	}
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		var s Sibling
		if s.Clock, err = vclock.Read(r); err != nil {
			return XDC{}, fmt.Errorf("pebble: corrupt xdc record: %w", err)
		}
		s.TS = log.Timestamp(r.Uvarint())
		s.Origin = r.String()
		s.Deleted = r.Byte() == 1
		if body := r.Bytes(); len(body) > 0 {
			s.Body = append([]byte(nil), body...)
		}
		x.Siblings = append(x.Siblings, s)
	}
	if err := r.Err(); err != nil {
		return XDC{}, fmt.Errorf("pebble: corrupt xdc record: %w", err)
	}
	return x, nil
}

// XDC returns a document's cross-datacenter state as of the batch (ok false when it has
// none: it never existed, or was last written before vector clocks).
func (b *Batch) XDC(k tiers.Key) (XDC, bool, error) {
	v, ok, err := b.get(xdcKey(k.Shard, k.Collection, k.ID))
	if err != nil || !ok {
		return XDC{}, false, err
	}
	x, err := decodeXDC(v)
	return x, err == nil, err
}

// PutXDC writes a document's cross-datacenter state.
func (b *Batch) PutXDC(k tiers.Key, x XDC) error {
	return b.set(xdcKey(k.Shard, k.Collection, k.ID), encodeXDC(x))
}

// XDC returns a document's committed cross-datacenter state.
func (d *DB) XDC(k tiers.Key) (XDC, bool, error) {
	v, ok, err := d.get(xdcKey(k.Shard, k.Collection, k.ID))
	if err != nil || !ok {
		return XDC{}, false, err
	}
	x, err := decodeXDC(v)
	return x, err == nil, err
}

// HighWater returns the highest index applied in shard from the stream (origin, srcShard,
// stream), 0 when none.
func (b *Batch) HighWater(shard uint64, origin string, srcShard uint64, stream uint32) (uint64, error) {
	v, ok, err := b.get(highWaterKey(shard, origin, srcShard, stream))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("pebble: corrupt high-water record")
	}
	return binary.BigEndian.Uint64(v), nil
}

// SetHighWater records the highest index applied in shard from a stream.
func (b *Batch) SetHighWater(shard uint64, origin string, srcShard uint64, stream uint32, index uint64) error {
	return b.set(highWaterKey(shard, origin, srcShard, stream), u64(index))
}

// PutPolicy stores a collection's policy in shard.
func (b *Batch) PutPolicy(shard uint64, coll string, policy []byte) error {
	return b.set(policyKey(shard, coll), policy)
}

// Policies returns every collection's stored policy in shard.
func (d *DB) Policies(shard uint64) (map[string][]byte, error) {
	p := key(shard, kPolicy)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string][]byte{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key()[len(p):])] = append([]byte(nil), it.Value()...)
	}
	return out, it.Error()
}

// ScanContent visits, from one snapshot, every document record of shard (tombstones too)
// in (collection, id) order with its cross-datacenter state (ok false when it has none).
func (d *DB) ScanContent(ctx context.Context, shard uint64, fn func(coll, id string, doc tiers.Doc, x XDC, ok bool) error) error {
	snap := d.db.NewSnapshot()
	defer snap.Close()
	p := key(shard, kDoc)
	it, err := snap.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rest := it.Key()[len(p):]
		sep := -1
		for i, c := range rest {
			if c == 0 {
				sep = i
				break
			}
		}
		if sep < 0 {
			return fmt.Errorf("pebble: corrupt document key")
		}
		coll, id := string(rest[:sep]), string(rest[sep+1:])
		doc, err := decodeDoc(shard, it.Value())
		if err != nil {
			return err
		}
		var x XDC
		v, closer, err := snap.Get(xdcKey(shard, coll, id))
		ok := err == nil
		if ok {
			x, err = decodeXDC(v)
			closer.Close()
			if err != nil {
				return err
			}
		} else if err != pdb.ErrNotFound {
			return err
		}
		if err := fn(coll, id, doc, x, ok); err != nil {
			return err
		}
	}
	return it.Error()
}

// ScanSiblings visits, in id order, the documents of coll in shard that have an open
// keep-both conflict, until fn returns false.
func (d *DB) ScanSiblings(ctx context.Context, shard uint64, coll string, fn func(id string, x XDC) bool) error {
	p := key(shard, kXDC, []byte(coll), []byte{0})
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		x, err := decodeXDC(it.Value())
		if err != nil {
			return err
		}
		if len(x.Siblings) > 0 && !fn(string(it.Key()[len(p):]), x) {
			break
		}
	}
	return it.Error()
}
