package db

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers/archive"
)

// TestArchiveIsInvisibleToReaders moves most events to the archive and checks that
// history, time travel, the event log, verification, change-stream resumption and replay
// answer exactly as before.
func TestArchiveIsInvisibleToReaders(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{DataDir: t.TempDir(), NodeID: 1, RaftAddr: loopback.FreeAddr(t), Shards: 2,
		RetainEvents: 10, SegmentEvents: 8, ArchiveInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < 120; i++ {
		w := Write{Op: log.OpPut, Collection: "c", ID: fmt.Sprint(i % 9), Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		if i%4 == 1 && i >= 9 {
			w.Op, w.Body = log.OpPatch, []byte(fmt.Sprintf(`{"p":%d}`, i))
		}
		if _, err := d.Write(ctx, "anonymous", w); err != nil {
			t.Fatal(err)
		}
	}
	// A token in the middle of history, and everything readers can ask, before archiving.
	sub, err := d.Subscribe(SubscribeRequest{From: "beginning"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == feed.KindEvent {
			i++
		}
	}
	midToken := sub.Token()
	type answers struct {
		history []Version
		asOf    Doc
		events  []EventRecord
		resumed []log.Position
		digest  StateDigest
		export  map[uint64][]log.Event
	}
	collect := func() answers {
		var a answers
		var err error
		if a.history, err = d.History(ctx, "c", "3", Linearizable); err != nil {
			t.Fatal(err)
		}
		tok, _ := feed.DecodeToken(midToken)
		if a.asOf, err = d.GetAsOf(ctx, "c", "3", &AsOf{Token: tok}, Linearizable); err != nil {
			t.Fatal(err)
		}
		page, err := d.Events(ctx, EventsRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		a.events = page.Events
		s, err := d.Subscribe(SubscribeRequest{From: "token", Token: midToken})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind == feed.KindCaughtUp {
				break
			}
			if m.Kind == feed.KindEvent {
				a.resumed = append(a.resumed, m.Event.Position)
			}
		}
		for _, sh := range d.shardIDs() {
			rep, err := d.Verify(ctx, sh, 0, 0)
			if err != nil || !rep.OK {
				t.Fatalf("verify shard %d: %+v %v", sh, rep, err)
			}
		}
		if a.digest, err = d.StateDigest(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := d.Export(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		if a.export, err = audit.ReadEvents(&buf); err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := collect()
	moved, err := d.archiveOnce(ctx)
	if err != nil || moved < 80 {
		t.Fatalf("archived %d events: %v", moved, err)
	}
	if first, _ := d.store.FirstEvent(1); first <= 1 {
		t.Fatalf("events were not dropped from L2 (first is %d)", first)
	}
	after := collect()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("answers changed by archiving:\nbefore %v\nafter  %v", before, after)
	}
	replayed, err := Replay(filepath.Join(t.TempDir(), "r"), d.Shards(), after.export)
	if err != nil || replayed.Digest != after.digest.Digest {
		t.Fatalf("replay from an archived history: %+v %v", replayed, err)
	}
	st := d.Tiers()
	if st.Tiers[2].Items < 80 || st.ArchiveRatio <= 1 {
		t.Fatalf("tier stats: %+v", st)
	}

	// Damage one byte of a segment: verification names the damaged stretch.
	names, _ := os.ReadDir(d.cfg.ArchiveDir)
	seg := filepath.Join(d.cfg.ArchiveDir, names[0].Name())
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d.archive.Close()
	if err := d.reopenArchive(ctx); err != nil {
		t.Fatal(err)
	}
	var shard, from uint64
	fmt.Sscanf(names[0].Name(), "s%06d-%020d-", &shard, &from)
	rep, err := d.Verify(ctx, shard, 0, 0)
	if err != nil || rep.OK || rep.Break.Position.Index != from {
		t.Fatalf("damaged segment %s: %+v %v", names[0].Name(), rep.Break, err)
	}
}

// reopenArchive re-indexes the archive directory after the test changed it underneath.
func (d *DB) reopenArchive(ctx context.Context) error {
	a, err := archive.Open(ctx, archive.Dir{Path: d.cfg.ArchiveDir})
	if err != nil {
		return err
	}
	d.archive = a
	return nil
}
