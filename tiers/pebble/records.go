package pebble

import (
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
)

// Meta is a shard's running state: where its event sequence and hash chain stand.
type Meta struct {
	LastIndex uint64        // index of the last event; 0 before the first
	LastTS    log.Timestamp // timestamp of the last event
	Head      log.Hash      // chain hash of the last event
}

// Version is one entry of a document's history.
type Version struct {
	Version   uint64
	Op        log.Op
	TS        log.Timestamp
	Principal string
	Position  log.Position
	Body      []byte // the document after this version; nil after a delete or a redaction
	Redacted  bool   // the body was erased by a redaction
}

// Idem is a remembered write result for an idempotency key.
type Idem struct {
	Collection string
	ID         string
	Expiry     log.Timestamp
	Result     []byte // opaque to this package
}

const (
	docFlagDeleted byte = 1
)

func encodeDoc(d tiers.Doc) []byte {
	b := make([]byte, 0, 24+len(d.Body))
	b = wire.AppendUvarint(b, d.Version)
	b = wire.AppendUvarint(b, uint64(d.TS))
	var flags byte
	if d.Deleted {
		flags |= docFlagDeleted
	}
	b = append(b, flags)
	b = wire.AppendUvarint(b, d.Position.Index)
	return wire.AppendBytes(b, d.Body)
}

func decodeDoc(shard uint64, v []byte) (tiers.Doc, error) {
	r := wire.NewReader(v)
	d := tiers.Doc{Version: r.Uvarint(), TS: log.Timestamp(r.Uvarint())}
	d.Deleted = r.Byte()&docFlagDeleted != 0
	d.Position = log.Position{Shard: shard, Index: r.Uvarint()}
	if body := r.Bytes(); len(body) > 0 {
		d.Body = append([]byte(nil), body...)
	}
	if err := r.Err(); err != nil {
		return tiers.Doc{}, fmt.Errorf("pebble: corrupt document record: %w", err)
	}
	return d, nil
}

func encodeVersion(v Version) []byte {
	b := make([]byte, 0, 32+len(v.Principal)+len(v.Body))
	b = wire.AppendUvarint(b, v.Position.Index)
	b = append(b, byte(v.Op))
	b = wire.AppendUvarint(b, uint64(v.TS))
	b = wire.AppendString(b, v.Principal)
	b = wire.AppendBytes(b, v.Body)
	if v.Redacted {
		b = append(b, 1)
	}
	return b
}

func decodeVersion(shard, version uint64, val []byte) (Version, error) {
	r := wire.NewReader(val)
	v := Version{Version: version}
	v.Position = log.Position{Shard: shard, Index: r.Uvarint()}
	v.Op = log.Op(r.Byte())
	v.TS = log.Timestamp(r.Uvarint())
	v.Principal = r.String()
	if body := r.Bytes(); len(body) > 0 {
		v.Body = append([]byte(nil), body...)
	}
	if r.Len() > 0 {
		v.Redacted = r.Byte() == 1
	}
	if err := r.Err(); err != nil {
		return Version{}, fmt.Errorf("pebble: corrupt version record: %w", err)
	}
	return v, nil
}

func encodeMeta(m Meta) []byte {
	b := make([]byte, 0, 64)
	b = wire.AppendUvarint(b, m.LastIndex)
	b = wire.AppendUvarint(b, uint64(m.LastTS))
	return append(b, m.Head[:]...)
}

func decodeMeta(v []byte) (Meta, error) {
	r := wire.NewReader(v)
	m := Meta{LastIndex: r.Uvarint(), LastTS: log.Timestamp(r.Uvarint())}
	copy(m.Head[:], r.Fixed(len(m.Head)))
	if err := r.Err(); err != nil {
		return Meta{}, fmt.Errorf("pebble: corrupt shard meta: %w", err)
	}
	return m, nil
}

func encodeIdem(i Idem) []byte {
	b := make([]byte, 0, 24+len(i.Collection)+len(i.ID)+len(i.Result))
	b = wire.AppendString(b, i.Collection)
	b = wire.AppendString(b, i.ID)
	b = wire.AppendUvarint(b, uint64(i.Expiry))
	return wire.AppendBytes(b, i.Result)
}

func decodeIdem(v []byte) (Idem, error) {
	r := wire.NewReader(v)
	i := Idem{Collection: r.String(), ID: r.String(), Expiry: log.Timestamp(r.Uvarint())}
	i.Result = append([]byte(nil), r.Bytes()...)
	if err := r.Err(); err != nil {
		return Idem{}, fmt.Errorf("pebble: corrupt idempotency record: %w", err)
	}
	return i, nil
}
