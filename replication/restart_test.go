package replication

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// TestDatacenterDownAndBack: east goes down (replicator and database closed) while west
// keeps accepting writes; east comes back on the same data and resumes shipping from its
// progress file (it does not ship its log again), applies what west wrote meanwhile, and
// both converge.
func TestDatacenterDownAndBack(t *testing.T) {
	k, err := StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	eastDir, eastRaft, eastRep := t.TempDir(), loopback.FreeAddr(t), t.TempDir()
	east, west := openDCAt(t, "east", eastDir, eastRaft), openDC(t, "west")
	er := startRep(t, testConfig("east", k.Addr(), eastRep), east)
	wr := startRep(t, testConfig("west", k.Addr(), t.TempDir()), west)
	defer wr.Close()
	ctx := context.Background()
	put := func(d *db.DB, id string) log.Position {
		t.Helper()
		r, err := d.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: "docs", ID: id, Body: fmt.Appendf(nil, `{"id":%q}`, id)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Position
	}
	const n = 50
	var last log.Position
	for i := range n {
		last = put(east, fmt.Sprintf("e%d", i))
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := er.WaitShipped(wctx, last); err != nil {
		t.Fatal(err)
	}
	er.Close()
	if err := east.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range n {
		put(west, fmt.Sprintf("w%d", i))
	}

	east = openDCAt(t, "east", eastDir, eastRaft)
	er = startRep(t, testConfig("east", k.Addr(), eastRep), east)
	defer er.Close()
	for i := n; i < n+10; i++ {
		put(east, fmt.Sprintf("e%d", i))
	}
	eventually(t, 30*time.Second, "both datacenters converge", func() (bool, string) {
		for _, r := range []*Replicator{er, wr} {
			if ok, why := caughtUp(r); !ok {
				return false, why
			}
		}
		de, _ := east.ContentDigest()
		dw, _ := west.ContentDigest()
		return de == dw, fmt.Sprintf("digests %x vs %x", de[:6], dw[:6])
	})
	if got := link(er.Status(), "ship").Events; got != 10 {
		t.Fatalf("east shipped %d records after its restart, want the 10 new ones (it resumes from its progress)", got)
	}
	for _, id := range []string{"e0", "e59", "w0", "w49"} {
		for _, d := range []*db.DB{east, west} {
			if _, err := d.Get(ctx, "docs", id, db.Linearizable); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
}
