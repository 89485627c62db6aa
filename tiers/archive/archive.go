package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/internal/durable"
	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/klauspost/compress/zstd"
)

// ErrCorrupt is returned when a segment fails its checksum or framing.
var ErrCorrupt = errors.New("archive: corrupt segment")

// Blobs is where segment files live: a local directory, or an object store.
type Blobs interface {
	Put(ctx context.Context, name string, data []byte) error // durable when it returns
	Get(ctx context.Context, name string) ([]byte, error)
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, name string) error // durable when it returns; a missing name is no error
}

// Dir keeps blobs as files in a directory.
type Dir struct{ Path string }

// Put writes name durably: temporary file, fsync, rename, fsync of the directory.
func (d Dir) Put(_ context.Context, name string, data []byte) error {
	return durable.WriteFile(d.Path, name, data)
}

// Get reads name.
func (d Dir) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Path, name))
}

// Delete removes name durably.
func (d Dir) Delete(_ context.Context, name string) error {
	return durable.Remove(d.Path, name)
}

// List returns the names of the blobs.
func (d Dir) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

const magic = "AERSEG1\n"

type segRange struct{ shard, from, to uint64 }

func segName(r segRange) string { return fmt.Sprintf("s%06d-%020d-%020d.seg", r.shard, r.from, r.to) }

func parseName(n string) (segRange, bool) {
	var r segRange
	if _, err := fmt.Sscanf(n, "s%06d-%020d-%020d.seg", &r.shard, &r.from, &r.to); err != nil || r.from == 0 || r.to < r.from {
		return segRange{}, false
	}
	return r, true
}

// Archive is the L4 tier over a Blobs.
type Archive struct {
	blobs Blobs
	enc   *zstd.Encoder
	dec   *zstd.Decoder

	mu       sync.Mutex
	segments map[uint64][]segRange // per shard, by From
	cache    map[string][][]byte   // decoded segments, bounded by cacheSegs
	order    []string
	sizes    map[string][2]int64 // per segment written since Open: raw and file bytes

	hits, misses        atomic.Uint64
	rawBytes, fileBytes atomic.Int64
	items               atomic.Int64
	readNanos           atomic.Int64
	reads               atomic.Int64
}

const cacheSegs = 8

// Open indexes the segments already in blobs.
func Open(ctx context.Context, blobs Blobs) (*Archive, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30), zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, err
	}
	a := &Archive{blobs: blobs, enc: enc, dec: dec, segments: map[uint64][]segRange{}, cache: map[string][][]byte{},
		sizes: map[string][2]int64{}}
	names, err := blobs.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive: list: %w", err)
	}
	for _, n := range names {
		r, ok := parseName(n)
		if !ok {
			continue
		}
		a.segments[r.shard] = append(a.segments[r.shard], r)
		a.items.Add(int64(r.to - r.from + 1))
	}
	for s := range a.segments {
		sort.Slice(a.segments[s], func(i, j int) bool { return a.segments[s][i].from < a.segments[s][j].from })
	}
	return a, nil
}

// Close releases the decoder.
func (a *Archive) Close() { a.dec.Close() }

// Archived returns the last index of shard held in the archive (0: none).
func (a *Archive) Archived(shard uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	segs := a.segments[shard]
	if len(segs) == 0 {
		return 0
	}
	return segs[len(segs)-1].to
}

// Put writes the consecutive events [from, from+len(records)-1] of shard as one segment.
// It must continue the shard's archive: from = Archived(shard)+1.
func (a *Archive) Put(ctx context.Context, shard, from uint64, records [][]byte) error {
	if len(records) == 0 {
		return nil
	}
	if last := a.Archived(shard); from != last+1 {
		return fmt.Errorf("archive: shard %d: segment from %d does not continue the archive at %d", shard, from, last)
	}
	r := segRange{shard: shard, from: from, to: from + uint64(len(records)) - 1}
	if err := a.write(ctx, r, records); err != nil {
		return err
	}
	a.mu.Lock()
	a.segments[shard] = append(a.segments[shard], r)
	a.mu.Unlock()
	a.items.Add(int64(len(records)))
	return nil
}

// Drop deletes every segment of shard, the newest first, so that what a crash leaves is
// still a prefix of the shard's events; Drop again finishes it.
func (a *Archive) Drop(ctx context.Context, shard uint64) error {
	for {
		a.mu.Lock()
		segs := a.segments[shard]
		if len(segs) == 0 {
			delete(a.segments, shard)
			a.mu.Unlock()
			return nil
		}
		r := segs[len(segs)-1]
		a.mu.Unlock()
		if err := a.blobs.Delete(ctx, segName(r)); err != nil {
			return fmt.Errorf("archive: shard %d: delete %s: %w", shard, segName(r), err)
		}
		a.mu.Lock()
		a.segments[shard] = segs[:len(segs)-1]
		delete(a.cache, segName(r))
		a.mu.Unlock()
		a.items.Add(-int64(r.to - r.from + 1))
	}
}

// Rewrite replaces the records of the segment holding index of shard, whose records
// rewrite maps (for erasing redacted bodies). The new file replaces the old atomically. It
// returns the segment's range.
func (a *Archive) Rewrite(ctx context.Context, shard, index uint64, rewrite func(i uint64, rec []byte) ([]byte, error)) (from, to uint64, err error) {
	a.mu.Lock()
	segs := a.segments[shard]
	i := sort.Search(len(segs), func(i int) bool { return segs[i].to >= index })
	a.mu.Unlock()
	if i == len(segs) || segs[i].from > index {
		return 0, 0, fmt.Errorf("archive: shard %d: index %d is not archived", shard, index)
	}
	r := segs[i]
	recs, err := a.segment(ctx, r)
	if err != nil {
		return 0, 0, err
	}
	out := make([][]byte, len(recs))
	for j, rec := range recs {
		if out[j], err = rewrite(r.from+uint64(j), rec); err != nil {
			return 0, 0, err
		}
	}
	if err := a.write(ctx, r, out); err != nil {
		return 0, 0, err
	}
	a.mu.Lock()
	delete(a.cache, segName(r))
	a.mu.Unlock()
	return r.from, r.to, nil
}

// write encodes and stores one segment durably.
func (a *Archive) write(ctx context.Context, r segRange, records [][]byte) error {
	var raw []byte
	for _, rec := range records {
		raw = wire.AppendBytes(raw, rec)
	}
	payload := a.enc.EncodeAll(raw, nil)
	b := []byte(magic)
	b = binary.BigEndian.AppendUint64(b, r.shard)
	b = binary.BigEndian.AppendUint64(b, r.from)
	b = binary.BigEndian.AppendUint64(b, r.to)
	b = append(b, payload...)
	sum := sha256.Sum256(payload)
	b = binary.BigEndian.AppendUint64(b, uint64(len(payload)))
	b = append(b, sum[:]...)
	name := segName(r)
	if err := a.blobs.Put(ctx, name, b); err != nil {
		return fmt.Errorf("archive: put: %w", err)
	}
	a.mu.Lock()
	old := a.sizes[name]
	a.sizes[name] = [2]int64{int64(len(raw)), int64(len(b))}
	a.mu.Unlock()
	a.rawBytes.Add(int64(len(raw)) - old[0])
	a.fileBytes.Add(int64(len(b)) - old[1])
	return nil
}

// decode checks and decodes a segment file.
func (a *Archive) decode(r segRange, b []byte) ([][]byte, error) {
	const hdr = len(magic) + 24
	const ftr = 8 + sha256.Size
	if len(b) < hdr+ftr || !bytes.Equal(b[:len(magic)], []byte(magic)) {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorrupt, segName(r))
	}
	if binary.BigEndian.Uint64(b[len(magic):]) != r.shard || binary.BigEndian.Uint64(b[len(magic)+8:]) != r.from ||
		binary.BigEndian.Uint64(b[len(magic)+16:]) != r.to {
		return nil, fmt.Errorf("%w: %s: header does not match the name", ErrCorrupt, segName(r))
	}
	payload := b[hdr : len(b)-ftr]
	foot := b[len(b)-ftr:]
	sum := sha256.Sum256(payload)
	if binary.BigEndian.Uint64(foot) != uint64(len(payload)) || !bytes.Equal(foot[8:], sum[:]) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, segName(r))
	}
	raw, err := a.dec.DecodeAll(payload, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, segName(r), err)
	}
	rd := wire.NewReader(raw)
	recs := make([][]byte, 0, r.to-r.from+1)
	for rd.Len() > 0 && rd.Err() == nil {
		recs = append(recs, append([]byte(nil), rd.Bytes()...))
	}
	if rd.Err() != nil || uint64(len(recs)) != r.to-r.from+1 {
		return nil, fmt.Errorf("%w: %s: %d records for %d events", ErrCorrupt, segName(r), len(recs), r.to-r.from+1)
	}
	return recs, nil
}

func (a *Archive) segment(ctx context.Context, r segRange) ([][]byte, error) {
	name := segName(r)
	a.mu.Lock()
	recs, ok := a.cache[name]
	a.mu.Unlock()
	if ok {
		a.hits.Add(1)
		return recs, nil
	}
	a.misses.Add(1)
	b, err := a.blobs.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("archive: get %s: %w", name, err)
	}
	if recs, err = a.decode(r, b); err != nil {
		return nil, err
	}
	a.mu.Lock()
	if _, ok := a.cache[name]; !ok {
		a.cache[name] = recs
		a.order = append(a.order, name)
		if len(a.order) > cacheSegs {
			delete(a.cache, a.order[0])
			a.order = a.order[1:]
		}
	}
	a.mu.Unlock()
	return recs, nil
}

// Events returns up to max archived records of shard from index from on, in order; an
// empty result when from is not archived.
func (a *Archive) Events(ctx context.Context, shard, from uint64, max int) ([][]byte, error) {
	start := time.Now()
	defer func() { a.readNanos.Add(int64(time.Since(start))); a.reads.Add(1) }()
	a.mu.Lock()
	segs := append([]segRange(nil), a.segments[shard]...)
	a.mu.Unlock()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].to >= from })
	var out [][]byte
	for ; i < len(segs) && len(out) < max; i++ {
		r := segs[i]
		if r.from > from+uint64(len(out)) {
			break // a hole: nothing archived there
		}
		recs, err := a.segment(ctx, r)
		if err != nil {
			return nil, err
		}
		for j := from + uint64(len(out)) - r.from; j < uint64(len(recs)) && len(out) < max; j++ {
			out = append(out, recs[j])
		}
	}
	return out, nil
}

// Stats reports the tier: events held, bytes on disk, segment cache hits and misses.
func (a *Archive) Stats() tiers.Stats {
	return tiers.Stats{Tier: "archive", Items: a.items.Load(), Bytes: a.fileBytes.Load(), Hits: a.hits.Load(), Misses: a.misses.Load()}
}

// CompressionRatio is the uncompressed size of the events archived since Open over their
// size on disk (0 before the first segment).
func (a *Archive) CompressionRatio() float64 {
	if f := a.fileBytes.Load(); f > 0 {
		return float64(a.rawBytes.Load()) / float64(f)
	}
	return 0
}

// MeanRead is the average time of an Events call.
func (a *Archive) MeanRead() time.Duration {
	if n := a.reads.Load(); n > 0 {
		return time.Duration(a.readNanos.Load() / n)
	}
	return 0
}
