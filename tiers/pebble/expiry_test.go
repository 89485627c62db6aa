package pebble_test

import (
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
)

// TestExpireRetriesFromFloor: retry records are deleted oldest first, at most limit a call,
// and each call returns the floor the next may start from; a call from that floor finds
// exactly what a call from 0 finds, and records past now are kept.
func TestExpireRetriesFromFloor(t *testing.T) {
	db := open(t)
	b := db.NewBatch()
	for i := 1; i <= 10; i++ {
		if err := b.PutRetry(1, log.Timestamp(i*10), fmt.Sprint("tok", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Another shard's record expiring early is not this shard's to delete.
	if err := b.PutRetry(2, 5, "other", []byte{1}); err != nil {
		t.Fatal(err)
	}
	floor, err := b.ExpireRetries(1, 0, 55, 3) // expired: 10..50; deletes 10, 20, 30
	if err != nil || floor != 30 {
		t.Fatalf("first sweep: floor %d, %v; want 30", floor, err)
	}
	if floor, err = b.ExpireRetries(1, floor, 55, 3); err != nil || floor != 50 {
		t.Fatalf("second sweep: floor %d, %v; want 50 (40 and 50 deleted)", floor, err)
	}
	if floor, err = b.ExpireRetries(1, floor, 55, 3); err != nil || floor != 50 {
		t.Fatalf("nothing left to expire: floor %d, %v; want it unchanged", floor, err)
	}
	for i := 1; i <= 10; i++ {
		_, ok, err := b.Retry(1, log.Timestamp(i*10), fmt.Sprint("tok", i))
		if err != nil || ok != (i > 5) {
			t.Errorf("record expiring at %d: present %v, %v; want %v", i*10, ok, err, i > 5)
		}
	}
	if _, ok, _ := b.Retry(2, 5, "other"); !ok {
		t.Error("shard 2's record went with shard 1's sweep")
	}
}
