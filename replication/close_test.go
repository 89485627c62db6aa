package replication

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
)

// TestCloseStopsGoroutines: after Close, the replicator's goroutines and its Kafka
// clients' are gone, and Close is idempotent.
func TestCloseStopsGoroutines(t *testing.T) {
	k, err := StartDevKafka("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	east := openDC(t, "east")
	ctx := context.Background()
	if _, err := east.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: "c", ID: "warm", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	r := startRep(t, testConfig("east", k.Addr(), t.TempDir()), east)
	res, err := east.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: "c", ID: "a", Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.WaitShipped(wctx, res.Position); err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine(); n <= before {
		t.Fatalf("%d goroutines running with the replicator, %d before: the check would see nothing", n, before)
	}
	r.Close()
	r.Close()
	if err := r.WaitShipped(wctx, log.Position{Shard: res.Position.Shard, Index: res.Position.Index + 1}); err != ErrClosed {
		t.Fatalf("WaitShipped after Close: %v, want ErrClosed", err)
	}
	eventually(t, 10*time.Second, "goroutines back to where they were", func() (bool, string) {
		n := runtime.NumGoroutine()
		if n <= before {
			return true, ""
		}
		buf := make([]byte, 1<<20)
		return false, fmt.Sprintf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	})
}
