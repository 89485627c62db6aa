package replication

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
)

// TestPolicyRoutesEvents: three datacenters; east's collections say where their events
// go: "all" (no policy) everywhere, "west-only" to west alone (north's applier skips
// them), "local" nowhere (east does not even ship them).
func TestPolicyRoutesEvents(t *testing.T) {
	k, err := StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()
	dcs := map[string]*db.DB{}
	reps := map[string]*Replicator{}
	for _, name := range []string{"east", "west", "north"} {
		d := openDC(t, name)
		for coll, p := range map[string]db.Policy{"west-only": {Replicate: []string{"west"}}, "local": {Replicate: []string{}}} {
			if err := d.SetPolicy(ctx, coll, p); err != nil {
				t.Fatal(err)
			}
		}
		dcs[name] = d
		r := startRep(t, testConfig(name, k.Addr(), t.TempDir()), d)
		defer r.Close()
		reps[name] = r
	}
	east := dcs["east"]
	var last log.Position
	for i := range 5 {
		for _, coll := range []string{"all", "west-only", "local"} {
			r, err := east.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: coll, ID: fmt.Sprint(i), Body: []byte(`{"v":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			last = r.Position
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reps["east"].WaitShipped(wctx, last); err != nil {
		t.Fatal(err)
	}
	if l := link(reps["east"].Status(), "ship"); l.Events != 10 || l.Skipped != 5 {
		t.Fatalf("east shipped %d and skipped %d events, want 10 and 5 (local stays home)", l.Events, l.Skipped)
	}
	applied := func(dc string) (events, skipped uint64) {
		for _, l := range reps[dc].Status().Links {
			if l.Direction == "apply" && l.Topic == "aerolith.east" {
				return l.Events, l.Skipped
			}
		}
		return 0, 0
	}
	eventually(t, 30*time.Second, "west and north consumed east's 10 records", func() (bool, string) {
		we, ws := applied("west")
		ne, ns := applied("north")
		return we+ws == 10 && ne+ns == 10, fmt.Sprintf("west %d+%d, north %d+%d", we, ws, ne, ns)
	})
	if we, ws := applied("west"); we != 10 || ws != 0 {
		t.Fatalf("west applied %d, skipped %d; want 10, 0", we, ws)
	}
	if ne, ns := applied("north"); ne != 5 || ns != 5 {
		t.Fatalf("north applied %d, skipped %d; want 5, 5", ne, ns)
	}
	want := map[string]map[string]bool{
		"west":  {"all": true, "west-only": true, "local": false},
		"north": {"all": true, "west-only": false, "local": false},
	}
	for dc, colls := range want {
		for coll, present := range colls {
			_, err := dcs[dc].Get(ctx, coll, "4", db.Linearizable)
			if present != (err == nil) || (!present && !errors.Is(err, db.ErrNotFound)) {
				t.Fatalf("%s: %s/4: %v, want present=%v", dc, coll, err, present)
			}
		}
	}
}
