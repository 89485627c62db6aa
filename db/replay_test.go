package db

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// TestReplayDigestEqualsLive rebuilds the store from the event history and compares its
// state digest with the live one at the same position.
func TestReplayDigestEqualsLive(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		w := Write{Op: log.OpPut, Collection: fmt.Sprintf("c%d", i%3), ID: fmt.Sprint(i % 17), Body: []byte(fmt.Sprintf(`{"i":%d,"s":"<&>"}`, i))}
		switch i % 5 {
		case 1:
			w.Op, w.Body = log.OpPatch, []byte(fmt.Sprintf(`{"p":%d}`, i))
		case 2:
			w.Op, w.Body = log.OpDelete, nil
		case 3:
			w.IdempotencyKey = fmt.Sprint("k", i)
		}
		if _, err := d.Write(ctx, "anonymous", w); err != nil && w.Op == log.OpPut {
			t.Fatal(err)
		}
	}
	live, err := d.StateDigest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	events, err := audit.ReadEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Replay(filepath.Join(t.TempDir(), "replay"), d.Shards(), events)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != live.Digest || got.Token != live.Token {
		t.Fatalf("replay %+v\nlive   %+v", got, live)
	}
	// Up to an earlier position: the replayed prefix differs from the live state.
	early, err := Replay(filepath.Join(t.TempDir(), "early"), d.Shards(), Cut(events, &AsOf{Token: feed.Token{1: 3, 2: 5}}))
	if err != nil || early.Digest == live.Digest || early.Shards[0].Index != 3 {
		t.Fatalf("prefix replay: %+v %v", early, err)
	}
}
