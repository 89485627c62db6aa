package pebble

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/aerolithsdb/aerolith/log"
	pdb "github.com/cockroachdb/pebble/v2"
)

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func newHashWriter(w io.Writer) *hashWriter { return &hashWriter{w: w, h: sha256.New()} }

func (h *hashWriter) Write(p []byte) (int, error) {
	h.h.Write(p)
	return h.w.Write(p)
}

func (h *hashWriter) Sum() []byte { return h.h.Sum(nil) }

// hashReader hashes what it reads; ReadByte feeds binary.ReadUvarint.
type hashReader struct {
	r *bufio.Reader
	h hash.Hash
}

func newHashReader(r io.Reader) *hashReader {
	return &hashReader{r: bufio.NewReaderSize(r, 1<<16), h: sha256.New()}
}

func (h *hashReader) ReadByte() (byte, error) {
	c, err := h.r.ReadByte()
	if err == nil {
		h.h.Write([]byte{c})
	}
	return c, err
}

const maxSnapshotValue = 64 << 20

func (h *hashReader) next(n uint64) ([]byte, error) {
	if n > maxSnapshotValue {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrCorruptSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	h.h.Write(b)
	return b, nil
}

func (h *hashReader) Sum() []byte { return h.h.Sum(nil) }

// Read lets the caller read the trailing checksum through the same buffer.
func (h *hashReader) Read(p []byte) (int, error) { return h.r.Read(p) }

func digest(snap *pdb.Snapshot, shard uint64) (log.Hash, error) {
	// Events are left out: the shard meta's head hash commits to all of them, and which of
	// them still sit in L2 rather than the archive is a node's own affair.
	h, _, err := hashShard(snap, shard, func(k []byte) bool {
		return !(len(k) == 1 && k[0] == kApplied || k[0] == kEvent)
	})
	return h, err
}

// hashShard hashes the keys of shard (relative to its prefix) that keep accepts, with
// their values, in key order, and returns the last event index the shard meta records.
func hashShard(snap *pdb.Snapshot, shard uint64, keep func(k []byte) bool) (log.Hash, uint64, error) {
	lo, hi := shardBounds(shard)
	it, err := snap.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return log.Hash{}, 0, err
	}
	defer it.Close()
	h := sha256.New()
	var buf []byte
	var last uint64
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(lo):]
		if !keep(k) {
			continue
		}
		if k[0] == kMeta {
			m, err := decodeMeta(it.Value())
			if err != nil {
				return log.Hash{}, 0, err
			}
			last = m.LastIndex
		}
		buf = binary.AppendUvarint(buf[:0], uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(it.Value())))
		h.Write(buf)
		h.Write(it.Value())
	}
	var out log.Hash
	copy(out[:], h.Sum(nil))
	return out, last, it.Error()
}

// StateDigest returns the SHA-256 of the part of a shard's state that its events alone
// determine — the shard meta (event count, last timestamp, and the head hash, which
// commits to every event), documents, versions and collection counts — and the index of
// the shard's last event, both from one snapshot. Replaying the same events into an empty
// store gives the same digest; idempotency records, index entries and the applied raft
// index are left out.
func (d *DB) StateDigest(shard uint64) (log.Hash, uint64, error) {
	snap := d.db.NewSnapshot()
	defer snap.Close()
	return hashShard(snap, shard, func(k []byte) bool {
		switch k[0] {
		case kMeta, kDoc, kVersion, kCount:
			return true
		}
		return false
	})
}
