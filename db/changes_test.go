package db

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
)

// TestChangeStreamResumesWithoutGapOrDuplicate writes continuously while a subscriber
// stops at random moments and resumes from its last token; what it received, per shard,
// must be exactly the committed sequence.
func TestChangeStreamResumesWithoutGapOrDuplicate(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	const writes = 600
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; i < writes; i++ {
			id := fmt.Sprintf("k%d", i%50)
			op := log.OpPut
			if i%7 == 3 {
				op = log.OpDelete
			}
			w := Write{Op: op, Collection: "c", ID: id, Body: []byte(fmt.Sprintf(`{"i":%d}`, i))}
			if _, err := d.Write(ctx, "anonymous", w); err != nil && op != log.OpDelete {
				t.Errorf("write %d: %v", i, err)
				return
			}
		}
	}()

	got := map[uint64][]uint64{}
	token := ""
	total := 0
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		req := SubscribeRequest{From: "beginning", IncludeAfter: true}
		if token != "" {
			req = SubscribeRequest{From: "token", Token: token, IncludeAfter: true}
		}
		sub, err := d.Subscribe(req)
		if err != nil {
			t.Fatal(err)
		}
		quota := 1 + rng.IntN(80) // events before this subscriber "disconnects"
		for quota > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("timed out with %d events", total)
			}
			mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			m, err := sub.Next(mctx)
			cancel()
			if err != nil {
				// Idle: finished when the writer is done and everything is delivered.
				select {
				case <-writerDone:
					if total >= committedEvents(d) {
						done = true
					}
				default:
				}
				if done {
					break
				}
				continue
			}
			token = m.Token
			if m.Kind != feed.KindEvent {
				continue
			}
			e := m.Event
			got[e.Position.Shard] = append(got[e.Position.Shard], e.Position.Index)
			total++
			quota--
			if e.Op != feed.OpDelete && len(e.After) == 0 {
				t.Fatalf("event without after image: %+v", e)
			}
		}
	}
	<-writerDone
	for _, s := range d.shardIDs() {
		head := d.hub.Head(s)
		if uint64(len(got[s])) != head {
			t.Fatalf("shard %d: received %d events, committed %d", s, len(got[s]), head)
		}
		for i, idx := range got[s] {
			if idx != uint64(i+1) {
				t.Fatalf("shard %d: position %d is %d (gap or duplicate)", s, i, idx)
			}
		}
	}
}

func committedEvents(d *DB) int {
	n := 0
	for _, s := range d.shardIDs() {
		n += int(d.hub.Head(s))
	}
	return n
}

func TestChangeStreamFilterCheckpointsAndStarts(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx := context.Background()
	put := func(coll, id, body string) Result {
		t.Helper()
		r, err := d.Write(ctx, "anonymous", Write{Op: log.OpPut, Collection: coll, ID: id, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	put("a", "1", `{"n":1}`)
	// Start times have millisecond resolution: start at the next millisecond and write
	// the next event no earlier.
	mid := time.UnixMilli(time.Now().UnixMilli() + 1)
	for time.Now().Before(mid) {
	}
	for i := 2; i <= 5; i++ {
		put("a", fmt.Sprint(i), fmt.Sprintf(`{"n":%d}`, i))
	}
	next := func(sub *feed.Subscription) feed.Message {
		t.Helper()
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := sub.Next(mctx)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// A filter that matches nothing still moves the token: caught_up, then checkpoints.
	sub, err := d.Subscribe(SubscribeRequest{From: "beginning", Filter: `doc.n > 100`})
	if err != nil {
		t.Fatal(err)
	}
	m := next(sub)
	if m.Kind != feed.KindCaughtUp {
		t.Fatalf("first message: %+v", m)
	}
	tok, _ := feed.DecodeToken(m.Token)
	var passed uint64
	for _, v := range tok {
		passed += v
	}
	if passed != 5 {
		t.Fatalf("token after catching up passes %d events: %v", passed, tok)
	}
	put("a", "6", `{"n":6}`)
	if m = next(sub); m.Kind != feed.KindCheckpoint || m.Token == tok.Encode() {
		t.Fatalf("expected a fresher checkpoint, got %+v", m)
	}
	put("a", "7", `{"n":700}`)
	if m = next(sub); m.Kind != feed.KindEvent || m.Event.ID != "7" || m.Event.Op != feed.OpCreate {
		t.Fatalf("matching event: %+v", m)
	}

	// From a time: events 2..7 (the first was before mid).
	sub, err = d.Subscribe(SubscribeRequest{From: "time", Time: mid, Collections: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		m := next(sub)
		if m.Kind == feed.KindCaughtUp {
			break
		}
		if m.Kind == feed.KindEvent {
			seen[m.Event.ID] = true
		}
	}
	if len(seen) != 6 || seen["1"] {
		t.Fatalf("from time: %v", seen)
	}

	// Updates and deletes carry before and after images and ops.
	sub, _ = d.Subscribe(SubscribeRequest{IncludeBefore: true, IncludeAfter: true})
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpPatch, Collection: "a", ID: "2", Body: []byte(`{"m":true}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(ctx, "anonymous", Write{Op: log.OpDelete, Collection: "a", ID: "2"}); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for len(ops) < 2 {
		m := next(sub)
		if m.Kind != feed.KindEvent {
			continue
		}
		ops = append(ops, m.Event.Op)
		switch m.Event.Op {
		case feed.OpUpdate:
			if string(m.Event.Before) != `{"n":2}` || string(m.Event.After) != `{"m":true,"n":2}` {
				t.Fatalf("update images: %s -> %s", m.Event.Before, m.Event.After)
			}
		case feed.OpDelete:
			if string(m.Event.Before) != `{"m":true,"n":2}` || m.Event.After != nil {
				t.Fatalf("delete images: %s -> %s", m.Event.Before, m.Event.After)
			}
		}
	}
	if ops[0] != "u" || ops[1] != "d" {
		t.Fatalf("ops %v", ops)
	}
	if _, err := d.Subscribe(SubscribeRequest{From: "token", Token: "garbage"}); err == nil {
		t.Fatal("garbage token accepted")
	}
	if _, err := d.Subscribe(SubscribeRequest{From: "token", Token: feed.Token{1: 1 << 40}.Encode()}); err == nil {
		t.Fatal("token from the future accepted")
	}
}
