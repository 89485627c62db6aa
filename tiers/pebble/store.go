package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync/atomic"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	pdb "github.com/cockroachdb/pebble/v2"
)

// DefaultCacheBytes is pebble's block cache size when Config.CacheBytes is zero.
const DefaultCacheBytes = 256 << 20

// Config configures a DB.
type Config struct {
	Dir        string // required
	CacheBytes int64  // block cache (default 256 MiB)
	Logger     *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("pebble: directory is required"))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("pebble: cache bytes must not be negative, got %d", c.CacheBytes))
	}
	return errors.Join(errs...)
}

// DB is the L2 store.
type DB struct {
	db           *pdb.DB
	dir          string
	hits, misses atomic.Uint64
}

var _ tiers.Store = (*DB)(nil)

// Open opens or creates the store in cfg.Dir.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cache := pdb.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	db, err := pdb.Open(cfg.Dir, &pdb.Options{Cache: cache, Logger: slogAdapter{cfg.Logger}})
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", cfg.Dir, err)
	}
	return &DB{db: db, dir: cfg.Dir}, nil
}

// Close closes the store.
func (d *DB) Close() error { return d.db.Close() }

// Sync makes every committed batch durable.
func (d *DB) Sync() error { return d.db.LogData(nil, pdb.Sync) }

func (d *DB) get(k []byte) ([]byte, bool, error) {
	v, closer, err := d.db.Get(k)
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// Get returns a document's record (a tombstone for a deleted one) or tiers.ErrNotFound.
func (d *DB) Get(k tiers.Key) (tiers.Doc, error) {
	v, ok, err := d.get(docKey(k.Shard, k.Collection, k.ID))
	if err != nil {
		return tiers.Doc{}, fmt.Errorf("pebble: get: %w", err)
	}
	if !ok {
		d.misses.Add(1)
		return tiers.Doc{}, tiers.ErrNotFound
	}
	d.hits.Add(1)
	return decodeDoc(k.Shard, v)
}

// Applied returns the raft index the shard's state reflects.
func (d *DB) Applied(shard uint64) (uint64, error) {
	v, ok, err := d.get(key(shard, kApplied))
	if err != nil || !ok {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// Meta returns the shard's meta (zero before the first event).
func (d *DB) Meta(shard uint64) (Meta, error) {
	v, ok, err := d.get(key(shard, kMeta))
	if err != nil || !ok {
		return Meta{}, err
	}
	return decodeMeta(v)
}

// Event returns the encoded event at index of shard, or tiers.ErrNotFound.
func (d *DB) Event(shard, index uint64) ([]byte, error) {
	v, ok, err := d.get(eventKey(shard, index))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, tiers.ErrNotFound
	}
	return v, nil
}

// History returns every version of a document, oldest first.
func (d *DB) History(k tiers.Key) ([]Version, error) {
	p := versionPrefix(k.Shard, k.Collection, k.ID)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Version
	for it.First(); it.Valid(); it.Next() {
		ver := binary.BigEndian.Uint64(it.Key()[len(p):])
		v, err := decodeVersion(k.Shard, ver, it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, it.Error()
}

// Counts returns the live document count per collection in shard.
func (d *DB) Counts(shard uint64) (map[string]int64, error) {
	p := key(shard, kCount)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string]int64{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key()[len(p):])] = int64(binary.BigEndian.Uint64(it.Value()))
	}
	return out, it.Error()
}

// Stats reports the L2 tier's document reads and its size on disk.
func (d *DB) Stats() tiers.Stats {
	m := d.db.Metrics()
	return tiers.Stats{Tier: "pebble", Bytes: int64(m.DiskSpaceUsage()), Hits: d.hits.Load(), Misses: d.misses.Load()}
}

// DropShard deletes every key of shard (its whole range: documents, versions, events,
// indexes, idempotency and retry records, meta and applied index) with one range
// deletion, synced, for a node that no longer holds a replica of the shard. Afterwards
// the shard reads as never applied: Applied is 0, Meta is zero and Digest is the digest
// of an empty shard. Node-local records outside the shard's range (signed checkpoints)
// stay. A shard with no key left is not written to. The caller makes sure nothing
// applies to the shard meanwhile.
func (d *DB) DropShard(shard uint64) error {
	lo, hi := shardBounds(shard)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebble: drop shard %d: %w", shard, err)
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("pebble: drop shard %d: %w", shard, err)
	}
	if empty {
		return nil
	}
	if err := d.db.DeleteRange(lo, hi, pdb.Sync); err != nil {
		return fmt.Errorf("pebble: drop shard %d: %w", shard, err)
	}
	return nil
}

// Digest returns the SHA-256 of a shard's materialized state: every key and value in its
// range except the applied raft index and the events themselves (the head hash in the
// shard meta commits to those; L4 may hold some of them). Replicas that applied the same
// events have equal digests.
func (d *DB) Digest(shard uint64) (log.Hash, error) {
	snap := d.db.NewSnapshot()
	defer snap.Close()
	return digest(snap, shard)
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) {
	a.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (a slogAdapter) Errorf(format string, args ...any) {
	a.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (a slogAdapter) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Batch accumulates one applied raft batch's writes. It reads its own writes.
type Batch struct {
	b *pdb.Batch
}

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch { return &Batch{b: d.db.NewIndexedBatch()} }

// Commit applies the batch atomically, without fsync.
func (b *Batch) Commit() error { return b.b.Commit(pdb.NoSync) }

// Close releases the batch.
func (b *Batch) Close() error { return b.b.Close() }

func (b *Batch) get(k []byte) ([]byte, bool, error) {
	v, closer, err := b.b.Get(k)
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

func (b *Batch) set(k, v []byte) error { return b.b.Set(k, v, nil) }

// Doc returns a document's record as of the batch, or tiers.ErrNotFound.
func (b *Batch) Doc(k tiers.Key) (tiers.Doc, error) {
	v, ok, err := b.get(docKey(k.Shard, k.Collection, k.ID))
	if err != nil {
		return tiers.Doc{}, err
	}
	if !ok {
		return tiers.Doc{}, tiers.ErrNotFound
	}
	return decodeDoc(k.Shard, v)
}

// PutDoc writes a document's current record.
func (b *Batch) PutDoc(k tiers.Key, d tiers.Doc) error {
	return b.set(docKey(k.Shard, k.Collection, k.ID), encodeDoc(d))
}

// PutVersion writes one entry of a document's history.
func (b *Batch) PutVersion(k tiers.Key, v Version) error {
	return b.set(versionKey(k.Shard, k.Collection, k.ID, v.Version), encodeVersion(v))
}

// PutEvent writes an encoded event into the event store.
func (b *Batch) PutEvent(pos log.Position, encoded []byte) error {
	return b.set(eventKey(pos.Shard, pos.Index), encoded)
}

// AddCount adds delta to a collection's live document count.
func (b *Batch) AddCount(shard uint64, coll string, delta int64) error {
	k := countKey(shard, coll)
	v, ok, err := b.get(k)
	if err != nil {
		return err
	}
	var n int64
	if ok {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n == 0 {
		return b.b.Delete(k, nil)
	}
	return b.set(k, u64(uint64(n)))
}

// Idem returns the idempotency record of reqID, if any.
func (b *Batch) Idem(shard uint64, reqID string) (Idem, bool, error) {
	v, ok, err := b.get(idemKey(shard, reqID))
	if err != nil || !ok {
		return Idem{}, false, err
	}
	i, err := decodeIdem(v)
	return i, err == nil, err
}

// PutIdem remembers a result for reqID until i.Expiry, replacing (with its expiry-index
// entry) any earlier record of reqID.
func (b *Batch) PutIdem(shard uint64, reqID string, i Idem) error {
	old, ok, err := b.Idem(shard, reqID)
	if err != nil {
		return err
	}
	if ok {
		if err := b.b.Delete(expiryKey(shard, uint64(old.Expiry), reqID), nil); err != nil {
			return err
		}
	}
	if err := b.set(idemKey(shard, reqID), encodeIdem(i)); err != nil {
		return err
	}
	return b.set(expiryKey(shard, uint64(i.Expiry), reqID), nil)
}

// Retry returns the results remembered for a command's retry token whose record expires
// at expiry, if the record is there.
func (b *Batch) Retry(shard uint64, expiry log.Timestamp, token string) ([]byte, bool, error) {
	return b.get(retryKey(shard, uint64(expiry), token))
}

// PutRetry remembers a command's results under its retry token until expiry.
func (b *Batch) PutRetry(shard uint64, expiry log.Timestamp, token string, results []byte) error {
	return b.set(retryKey(shard, uint64(expiry), token), results)
}

// Expiring records deletes the oldest of an expiry-ordered range. Deleted keys stay as
// tombstones until compaction, and an iterator from the start of the range would step
// over all of them on every call, so each call starts from a floor below which nothing is
// left: the caller keeps it (in memory, 0 after a restart) and passes it back.

// ExpireRetries deletes at most limit retry records that expire at or before now, oldest
// first, looking from expiry from on, and returns the expiry of the last one it deleted
// (from when it deleted none).
func (b *Batch) ExpireRetries(shard uint64, from, now log.Timestamp, limit int) (log.Timestamp, error) {
	lo := key(shard, kRetry)
	dead, err := b.oldest(key(shard, kRetry, u64(uint64(from))), key(shard, kRetry, u64(uint64(now)+1)), limit)
	if err != nil {
		return from, err
	}
	for _, k := range dead {
		if err := b.b.Delete(k, nil); err != nil {
			return from, err
		}
		from = log.Timestamp(binary.BigEndian.Uint64(k[len(lo) : len(lo)+8]))
	}
	return from, nil
}

// ExpireIdem deletes at most limit idempotency records that expired before now, oldest
// first, looking from expiry from on, and returns the expiry of the last one it deleted
// (from when it deleted none).
func (b *Batch) ExpireIdem(shard uint64, from, now log.Timestamp, limit int) (log.Timestamp, error) {
	lo := key(shard, kExpiry)
	dead, err := b.oldest(key(shard, kExpiry, u64(uint64(from))), key(shard, kExpiry, u64(uint64(now))), limit)
	if err != nil {
		return from, err
	}
	for _, k := range dead {
		reqID := string(k[len(lo)+8:])
		expiry := log.Timestamp(binary.BigEndian.Uint64(k[len(lo) : len(lo)+8]))
		// Delete the record only if this index entry is still its own.
		rec, ok, err := b.Idem(shard, reqID)
		if err != nil {
			return from, err
		}
		if ok && rec.Expiry == expiry {
			if err := b.b.Delete(idemKey(shard, reqID), nil); err != nil {
				return from, err
			}
		}
		if err := b.b.Delete(k, nil); err != nil {
			return from, err
		}
		from = expiry
	}
	return from, nil
}

// oldest returns the first limit keys of [lo, hi).
func (b *Batch) oldest(lo, hi []byte, limit int) ([][]byte, error) {
	it, err := b.b.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for it.First(); it.Valid() && len(keys) < limit; it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	return keys, it.Close()
}

// SetMeta writes the shard's meta.
func (b *Batch) SetMeta(shard uint64, m Meta) error { return b.set(key(shard, kMeta), encodeMeta(m)) }

// SetApplied records the raft index this batch brings the shard to.
func (b *Batch) SetApplied(shard, index uint64) error {
	return b.set(key(shard, kApplied), u64(index))
}

// A Snapshot is a point-in-time view of one shard's state.
type Snapshot struct {
	snap  *pdb.Snapshot
	shard uint64
}

// Snapshot captures shard's current state.
func (d *DB) Snapshot(shard uint64) *Snapshot {
	return &Snapshot{snap: d.db.NewSnapshot(), shard: shard}
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.snap.Close() }

// Snapshot stream format: a sequence of (uvarint key length, key, uvarint value length,
// value) with keys relative to the shard prefix, ended by a zero key length and the
// SHA-256 of everything before it.

// WriteTo streams the snapshot to w, stopping early when done closes.
func (s *Snapshot) WriteTo(w io.Writer, done <-chan struct{}) error {
	lo, hi := shardBounds(s.shard)
	it, err := s.snap.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	h := newHashWriter(w)
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		select {
		case <-done:
			return errSnapshotStopped
		default:
		}
		k := it.Key()[len(lo):]
		buf = binary.AppendUvarint(buf[:0], uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(it.Value())))
		buf = append(buf, it.Value()...)
		if _, err := h.Write(buf); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if _, err := h.Write([]byte{0}); err != nil {
		return err
	}
	_, err = w.Write(h.Sum())
	return err
}

var errSnapshotStopped = errors.New("pebble: snapshot stopped")

// ErrCorruptSnapshot is returned when a snapshot stream fails its checksum or framing.
var ErrCorruptSnapshot = errors.New("pebble: corrupt snapshot")

// Restore replaces shard's state with a stream written by Snapshot.WriteTo. The stream is
// first copied to a file and verified whole, so a corrupt stream leaves the shard as it was.
// The applied index is written last: if the process dies while the verified stream is being
// applied, the shard reads as never applied and raft restores it again.
func (d *DB) Restore(shard uint64, r io.Reader, done <-chan struct{}) error {
	f, err := os.CreateTemp(d.dir, "restore-*.snap")
	if err != nil {
		return fmt.Errorf("pebble: restore: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("pebble: restore: %w", err)
	}
	for _, apply := range []bool{false, true} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := d.restorePass(shard, f, done, apply); err != nil {
			return err
		}
	}
	return d.Sync()
}

// restorePass reads a snapshot stream and checks its checksum; with apply it also
// replaces the shard's state with it.
func (d *DB) restorePass(shard uint64, r io.Reader, done <-chan struct{}, apply bool) error {
	lo, hi := shardBounds(shard)
	br := newHashReader(r)
	var applied []byte
	b := d.db.NewBatch()
	defer func() { b.Close() }()
	if apply {
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return err
		}
	}
	for {
		select {
		case <-done:
			return errSnapshotStopped
		default:
		}
		kl, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
		}
		if kl == 0 {
			break
		}
		k, err := br.next(kl)
		if err != nil {
			return err
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
		}
		v, err := br.next(vl)
		if err != nil {
			return err
		}
		if !apply {
			continue
		}
		if len(k) == 1 && k[0] == kApplied {
			applied = v
			continue
		}
		if err := b.Set(append(append([]byte(nil), lo...), k...), v, nil); err != nil {
			return err
		}
		if b.Len() > 16<<20 {
			if err := b.Commit(pdb.NoSync); err != nil {
				return err
			}
			b.Close()
			b = d.db.NewBatch()
		}
	}
	want := br.Sum()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, want) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	if !apply {
		return nil
	}
	if applied != nil {
		if err := b.Set(key(shard, kApplied), applied, nil); err != nil {
			return err
		}
	}
	return b.Commit(pdb.NoSync)
}

// Events returns up to max encoded events of shard from index from (inclusive), in order.
func (d *DB) Events(shard, from uint64, max int) ([][]byte, error) {
	lo := eventKey(shard, from)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: key(shard, kEvent+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for it.First(); it.Valid() && len(out) < max; it.Next() {
		out = append(out, append([]byte(nil), it.Value()...))
	}
	return out, it.Error()
}

// Version returns one version of a document's history.
func (d *DB) Version(k tiers.Key, version uint64) (Version, bool, error) {
	v, ok, err := d.get(versionKey(k.Shard, k.Collection, k.ID, version))
	if err != nil || !ok {
		return Version{}, false, err
	}
	ver, err := decodeVersion(k.Shard, version, v)
	return ver, err == nil, err
}

// Node-local records live outside every shard's range, so they are in no snapshot and no
// digest: 'k' shard index → a signed checkpoint this node made.
const kCheckpoint byte = 'k'

func checkpointKey(shard, index uint64) []byte {
	b := []byte{kCheckpoint}
	b = binary.BigEndian.AppendUint64(b, shard)
	return binary.BigEndian.AppendUint64(b, index)
}

// PutCheckpoint stores a checkpoint record durably.
func (d *DB) PutCheckpoint(shard, index uint64, rec []byte) error {
	return d.db.Set(checkpointKey(shard, index), rec, pdb.Sync)
}

// DeleteCheckpoints deletes every checkpoint record of shard, durably.
func (d *DB) DeleteCheckpoints(shard uint64) error {
	return d.db.DeleteRange(checkpointKey(shard, 0), checkpointKey(shard+1, 0), pdb.Sync)
}

// Checkpoints returns the checkpoint records of shard with from <= index <= to.
func (d *DB) Checkpoints(shard, from, to uint64) ([][]byte, error) {
	upper := checkpointKey(shard, to+1)
	if to == math.MaxUint64 {
		upper = checkpointKey(shard+1, 0)
	}
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: checkpointKey(shard, from), UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for it.First(); it.Valid(); it.Next() {
		out = append(out, append([]byte(nil), it.Value()...))
	}
	return out, it.Error()
}

// FirstEvent returns the smallest event index of shard still in L2 (0 when none).
func (d *DB) FirstEvent(shard uint64) (uint64, error) {
	lo := key(shard, kEvent)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: lo, UpperBound: key(shard, kEvent+1)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.First() {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[len(lo):]), nil
}

// DeleteEvents removes the events [from, to] of shard from L2, once they are durable in
// the archive. It is local to this node.
func (d *DB) DeleteEvents(shard, from, to uint64) error {
	return d.db.DeleteRange(eventKey(shard, from), eventKey(shard, to+1), pdb.NoSync)
}

// kMask marks events redacted after they left L2 for the archive, whose segments are
// immutable: readers erase the body on the way out.
const kMask byte = 'r'

// Version returns one version of a document's history as of the batch.
func (b *Batch) Version(k tiers.Key, version uint64) (Version, bool, error) {
	v, ok, err := b.get(versionKey(k.Shard, k.Collection, k.ID, version))
	if err != nil || !ok {
		return Version{}, false, err
	}
	ver, err := decodeVersion(k.Shard, version, v)
	return ver, err == nil, err
}

// Event returns an encoded event as of the batch (ok false when it is not in L2).
func (b *Batch) Event(pos log.Position) ([]byte, bool, error) {
	return b.get(eventKey(pos.Shard, pos.Index))
}

// MaskEvent records that the event at pos is redacted.
func (b *Batch) MaskEvent(pos log.Position) error {
	return b.set(key(pos.Shard, kMask, u64(pos.Index)), nil)
}

// Masked returns which events of shard in [from, to] are redacted by mask.
func (d *DB) Masked(shard, from, to uint64) (map[uint64]bool, error) {
	p := key(shard, kMask)
	it, err := d.db.NewIter(&pdb.IterOptions{LowerBound: key(shard, kMask, u64(from)), UpperBound: key(shard, kMask, u64(to+1))})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[uint64]bool{}
	for it.First(); it.Valid(); it.Next() {
		out[binary.BigEndian.Uint64(it.Key()[len(p):])] = true
	}
	return out, it.Error()
}
