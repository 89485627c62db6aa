package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/tiers"
	pdb "github.com/cockroachdb/pebble/v2"
)

// IndexState is where an index's backfill stands.
type IndexState uint8

// The states. Values are part of the encoding.
const (
	IndexBuilding IndexState = 1
	IndexReady    IndexState = 2
)

func (s IndexState) String() string {
	if s == IndexReady {
		return "ready"
	}
	return "building"
}

// IndexDef is a secondary index of one collection in one shard.
type IndexDef struct {
	Collection string
	Name       string
	Fields     []string
	State      IndexState
	// Backfilled is the id after which the backfill continues (exclusive): documents up to
	// it have entries. "" before the first step (ids are never empty).
	Backfilled string
}

func encodeIndexDef(d IndexDef) []byte {
	b := []byte{byte(d.State)}
	b = wire.AppendUvarint(b, uint64(len(d.Fields)))
	for _, f := range d.Fields {
		b = wire.AppendString(b, f)
	}
	return wire.AppendString(b, d.Backfilled)
}

func decodeIndexDef(coll, name string, v []byte) (IndexDef, error) {
	r := wire.NewReader(v)
	d := IndexDef{Collection: coll, Name: name, State: IndexState(r.Byte())}
	n := r.Uvarint()
	if n > uint64(len(v)) {
		return IndexDef{}, fmt.Errorf("pebble: corrupt index definition")
	}
	for i := uint64(0); i < n; i++ {
		d.Fields = append(d.Fields, r.String())
	}
	d.Backfilled = r.String()
	if err := r.Err(); err != nil {
		return IndexDef{}, fmt.Errorf("pebble: corrupt index definition: %w", err)
	}
	return d, nil
}

// IndexDefs returns every index definition of shard.
func (d *DB) IndexDefs(shard uint64) ([]IndexDef, error) { return indexDefs(d.db, shard) }

// IndexDefs returns every index definition of shard as of the batch.
func (b *Batch) IndexDefs(shard uint64) ([]IndexDef, error) { return indexDefs(b.b, shard) }

type iterable interface {
	NewIter(*pdb.IterOptions) (*pdb.Iterator, error)
}

func indexDefs(r iterable, shard uint64) ([]IndexDef, error) {
	p := indexDefPrefix(shard)
	it, err := r.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []IndexDef
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(p):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, fmt.Errorf("pebble: corrupt index definition key")
		}
		def, err := decodeIndexDef(string(rest[:i]), string(rest[i+1:]), it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, def)
	}
	return out, it.Error()
}

// PutIndexDef writes an index definition.
func (b *Batch) PutIndexDef(shard uint64, def IndexDef) error {
	return b.set(indexDefKey(shard, def.Collection, def.Name), encodeIndexDef(def))
}

// DeleteIndex removes an index definition and all its entries.
func (b *Batch) DeleteIndex(shard uint64, coll, name string) error {
	p := indexEntryPrefix(shard, coll, name)
	if err := b.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return err
	}
	return b.b.Delete(indexDefKey(shard, coll, name), nil)
}

func indexEntryKey(shard uint64, coll, name string, valueKey []byte, id string) []byte {
	k := indexEntryPrefix(shard, coll, name)
	k = append(k, valueKey...)
	return append(k, id...)
}

// PutIndexEntry adds the entry of document id with the given value key.
func (b *Batch) PutIndexEntry(shard uint64, coll, name string, valueKey []byte, id string) error {
	return b.set(indexEntryKey(shard, coll, name, valueKey, id), []byte(id))
}

// DeleteIndexEntry removes an entry.
func (b *Batch) DeleteIndexEntry(shard uint64, coll, name string, valueKey []byte, id string) error {
	return b.b.Delete(indexEntryKey(shard, coll, name, valueKey, id), nil)
}

// ScanDocs visits, as of the batch, the document records of coll with id > after (all when
// after is ""), in id order, until fn returns false.
func (b *Batch) ScanDocs(shard uint64, coll, after string, fn func(id string, d tiers.Doc) bool) error {
	p := docPrefix(shard, coll)
	lo := p
	if after != "" {
		lo = append(append(append([]byte(nil), p...), after...), 0)
	}
	return scanDocs(context.Background(), b.b, shard, p, lo, prefixEnd(p), func(id string, d tiers.Doc) bool { return fn(id, d) })
}

// ScanDocs visits the live documents of coll with lo <= id < hi (nil bounds open) in id
// order until fn returns false.
func (d *DB) ScanDocs(ctx context.Context, shard uint64, coll string, lo, hi []byte, fn func(id string, d tiers.Doc) bool) error {
	p := docPrefix(shard, coll)
	l, h := p, prefixEnd(p)
	if lo != nil {
		l = append(append([]byte(nil), p...), lo...)
	}
	if hi != nil {
		h = append(append([]byte(nil), p...), hi...)
	}
	return scanDocs(ctx, d.db, shard, p, l, h, func(id string, doc tiers.Doc) bool {
		if doc.Deleted {
			return true
		}
		return fn(id, doc)
	})
}

func scanDocs(ctx context.Context, r iterable, shard uint64, p, lo, hi []byte, fn func(string, tiers.Doc) bool) error {
	it, err := r.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		doc, err := decodeDoc(shard, it.Value())
		if err != nil {
			return err
		}
		if !fn(string(it.Key()[len(p):]), doc) {
			break
		}
	}
	return it.Error()
}

// ScanIndex visits the ids of the entries of an index whose value key lies in [lo, hi),
// in key order (descending when reverse), until fn returns false.
func (d *DB) ScanIndex(ctx context.Context, shard uint64, coll, name string, lo, hi []byte, reverse bool, fn func(id string) bool) error {
	p := indexEntryPrefix(shard, coll, name)
	l := append(append([]byte(nil), p...), lo...)
	h := prefixEnd(p)
	if hi != nil {
		h = append(append([]byte(nil), p...), hi...)
	}
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: l, UpperBound: h})
	if err != nil {
		return err
	}
	defer it.Close()
	first, next := it.First, it.Next
	if reverse {
		first, next = it.Last, it.Prev
	}
	n := 0
	for first(); it.Valid(); next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if !fn(string(it.Value())) {
			break
		}
	}
	return it.Error()
}

// CountIndex counts the entries of an index.
func (d *DB) CountIndex(shard uint64, coll, name string) (int64, error) {
	var n int64
	err := d.ScanIndex(context.Background(), shard, coll, name, nil, nil, false, func(string) bool { n++; return true })
	return n, err
}

// ScanVersions visits every version of every document of coll in shard, ordered by id and
// then version, until fn returns false.
func (d *DB) ScanVersions(ctx context.Context, shard uint64, coll string, fn func(id string, v Version) bool) error {
	p := key(shard, kVersion, []byte(coll), []byte{0})
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
		rest := it.Key()[len(p):]
		if len(rest) < 9 {
			return fmt.Errorf("pebble: corrupt version key")
		}
		id := string(rest[:len(rest)-9])
		v, err := decodeVersion(shard, binary.BigEndian.Uint64(rest[len(rest)-8:]), it.Value())
		if err != nil {
			return err
		}
		if !fn(id, v) {
			break
		}
	}
	return it.Error()
}
