package pebble

import (
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/log"
	pdb "github.com/cockroachdb/pebble/v2"
)

// TestTamperedStoredEventIsNamed changes one byte of an event as stored in pebble and
// checks that verification names exactly that position.
func TestTamperedStoredEventIsNamed(t *testing.T) {
	db, err := Open(Config{Dir: t.TempDir(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	codec := log.NewCodec(0)
	defer codec.Close()
	b := db.NewBatch()
	var prev log.Hash
	for i := uint64(1); i <= 50; i++ {
		e := log.Event{Position: log.Position{Shard: 3, Index: i}, TS: log.Timestamp(i << 16), Origin: "dc1", Op: log.OpPut,
			Collection: "c", ID: fmt.Sprint(i), Version: 1, Body: []byte(fmt.Sprintf(`{"n":%d,"pad":"%0600d"}`, i, i)), PrevHash: prev}
		prev = e.Hash()
		if err := b.PutEvent(e.Position, codec.Encode(&e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	verify := func() audit.Report {
		raw, err := db.Events(3, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		var items []audit.Item
		for i, r := range raw {
			e, err := codec.Decode(r)
			it := audit.Item{Index: uint64(i + 1), Err: err}
			if err == nil {
				it.Event = &e
			}
			items = append(items, it)
		}
		return audit.Verify(items, audit.Range{Shard: 3, Head: &prev})
	}
	if rep := verify(); !rep.OK {
		t.Fatalf("intact store: %+v", rep)
	}
	for _, target := range []uint64{1, 17, 50} {
		k := eventKey(3, target)
		v, closer, err := db.db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		orig := append([]byte(nil), v...)
		closer.Close()
		for _, at := range []int{len(orig) / 2, len(orig) - 40, 20} {
			bad := append([]byte(nil), orig...)
			bad[at] ^= 0x20
			if err := db.db.Set(k, bad, pdb.NoSync); err != nil {
				t.Fatal(err)
			}
			rep := verify()
			if rep.OK || rep.Break.Position.Index != target {
				t.Errorf("byte %d of event %d changed: report %+v", at, target, rep.Break)
			}
		}
		if err := db.db.Set(k, orig, pdb.NoSync); err != nil {
			t.Fatal(err)
		}
	}
}
