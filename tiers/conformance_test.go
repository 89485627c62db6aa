package tiers_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
	"github.com/aerolithsdb/aerolith/tiers/memory"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// impl is one tier under test: a Store and the way that tier is written to.
type impl struct {
	name string
	open func(t *testing.T) (tiers.Store, func(t *testing.T, k tiers.Key, d tiers.Doc))
}

// impls lists every tier that implements tiers.Store. A new tier adds a line here and
// runs the whole contract.
var impls = []impl{
	{"memory", func(t *testing.T) (tiers.Store, func(*testing.T, tiers.Key, tiers.Doc)) {
		c, err := memory.New(memory.Config{MaxBytes: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return c, func(_ *testing.T, k tiers.Key, d tiers.Doc) { c.Set(k, d) }
	}},
	{"pebble", func(t *testing.T) (tiers.Store, func(*testing.T, tiers.Key, tiers.Doc)) {
		db, err := l2.Open(l2.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, func(t *testing.T, k tiers.Key, d tiers.Doc) {
			t.Helper()
			b := db.NewBatch()
			defer b.Close()
			if err := b.PutDoc(k, d); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

func doc(version uint64, shard uint64, body string) tiers.Doc {
	d := tiers.Doc{
		Version:  version,
		TS:       log.MakeTimestamp(1_700_000_000_000+int64(version), uint16(version)),
		Position: log.Position{Shard: shard, Index: 100 + version},
	}
	if body != "" {
		d.Body = []byte(body)
	}
	return d
}

func tombstone(version uint64, shard uint64) tiers.Doc {
	d := doc(version, shard, "")
	d.Deleted = true
	return d
}

func sameDoc(a, b tiers.Doc) bool {
	return a.Version == b.Version && a.TS == b.TS && a.Deleted == b.Deleted && a.Position == b.Position && bytes.Equal(a.Body, b.Body)
}

// TestStoreContract runs the tiers.Store read contract against every implementation.
func TestStoreContract(t *testing.T) {
	k := tiers.Key{Shard: 1, Collection: "orders", ID: "a1"}
	// Keys that must not be confused with k or with each other.
	neighbours := []tiers.Key{
		{Shard: 2, Collection: "orders", ID: "a1"},
		{Shard: 1, Collection: "orders", ID: "a"},
		{Shard: 1, Collection: "orders", ID: "a10"},
		{Shard: 1, Collection: "order", ID: "sa1"},
		{Shard: 1, Collection: "orders\x00a", ID: "1"},
		{Shard: 1, Collection: "", ID: ""},
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc))
	}{
		{"absent key is ErrNotFound", func(t *testing.T, s tiers.Store, _ func(*testing.T, tiers.Key, tiers.Doc)) {
			for _, key := range append([]tiers.Key{k}, neighbours...) {
				if d, err := s.Get(key); !errors.Is(err, tiers.ErrNotFound) {
					t.Fatalf("Get(%+v) = %+v, %v; want ErrNotFound", key, d, err)
				}
			}
		}},
		{"returns what was written", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			want := doc(1, k.Shard, `{"total":5}`)
			write(t, k, want)
			got, err := s.Get(k)
			if err != nil || !sameDoc(got, want) {
				t.Fatalf("Get = %+v %s, %v; want %+v %s", got, got.Body, err, want, want.Body)
			}
			for _, key := range neighbours {
				if _, err := s.Get(key); !errors.Is(err, tiers.ErrNotFound) {
					t.Fatalf("writing %+v made %+v readable: %v", k, key, err)
				}
			}
		}},
		{"later versions replace earlier", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			for v := uint64(1); v <= 5; v++ {
				want := doc(v, k.Shard, fmt.Sprintf(`{"v":%d}`, v))
				write(t, k, want)
				got, err := s.Get(k)
				if err != nil || !sameDoc(got, want) {
					t.Fatalf("after version %d: Get = %+v %s, %v", v, got, got.Body, err)
				}
			}
		}},
		{"tombstone is a record", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			write(t, k, doc(1, k.Shard, `{"a":1}`))
			write(t, k, tombstone(2, k.Shard))
			got, err := s.Get(k)
			if err != nil || !got.Deleted || got.Version != 2 || len(got.Body) != 0 {
				t.Fatalf("Get after delete = %+v, %v; want a version-2 tombstone", got, err)
			}
			write(t, k, doc(3, k.Shard, `{"again":true}`))
			if got, err := s.Get(k); err != nil || got.Deleted || got.Version != 3 || string(got.Body) != `{"again":true}` {
				t.Fatalf("Get after re-create = %+v, %v", got, err)
			}
		}},
		{"keys are independent", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			all := append([]tiers.Key{k}, neighbours...)
			for i, key := range all {
				write(t, key, doc(uint64(i+1), key.Shard, fmt.Sprintf(`{"i":%d}`, i)))
			}
			for i, key := range all {
				got, err := s.Get(key)
				if err != nil || got.Version != uint64(i+1) || string(got.Body) != fmt.Sprintf(`{"i":%d}`, i) {
					t.Fatalf("Get(%+v) = %+v %s, %v", key, got, got.Body, err)
				}
			}
		}},
		{"large body", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			want := doc(1, k.Shard, `{"x":"`+string(bytes.Repeat([]byte("y"), 1<<20))+`"}`)
			write(t, k, want)
			if got, err := s.Get(k); err != nil || !sameDoc(got, want) {
				t.Fatalf("Get of a 1 MiB document: %d bytes, %v", len(got.Body), err)
			}
		}},
		{"concurrent readers", func(t *testing.T, s tiers.Store, write func(*testing.T, tiers.Key, tiers.Doc)) {
			const keys = 50
			for i := range keys {
				key := tiers.Key{Shard: 1, Collection: "c", ID: fmt.Sprint(i)}
				write(t, key, doc(uint64(i+1), 1, fmt.Sprintf(`{"i":%d}`, i)))
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range 500 {
						i := (r*7 + g) % keys
						d, err := s.Get(tiers.Key{Shard: 1, Collection: "c", ID: fmt.Sprint(i)})
						if err != nil || d.Version != uint64(i+1) {
							errs <- fmt.Errorf("key %d: %+v, %v", i, d, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}},
	}
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, write := im.open(t)
					tt.run(t, s, write)
				})
			}
		})
	}
}
