package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/aerolithsdb/aerolith/query"
)

// TestPeerOrder checks whom a node asks for a shard it does not hold: the node that
// served the shard last, then its hosts, then its placed voters, then the other nodes;
// never itself, a removed node or one without an HTTP address; a node that recently left
// a call unanswered last.
func TestPeerOrder(t *testing.T) {
	st := meta.State{
		Nodes: []meta.Node{
			{ID: 1, HTTPAddr: "a:1", State: meta.Active}, {ID: 2, HTTPAddr: "a:2", State: meta.Active},
			{ID: 3, HTTPAddr: "a:3", State: meta.Active}, {ID: 4, HTTPAddr: "a:4", State: meta.Active},
			{ID: 5, HTTPAddr: "a:5", State: meta.Removed}, {ID: 6, State: meta.Active},
			{ID: 7, HTTPAddr: "a:7", State: meta.Leaving},
		},
		Hosts:     map[uint64][]uint64{9: {4, 3}},
		Placement: map[uint64][]uint64{9: {2, 3}},
	}
	p := newPeers(1, nil)
	ids := func() []uint64 {
		var out []uint64
		for _, n := range p.order(st, 9) {
			out = append(out, n.ID)
		}
		return out
	}
	if got, want := ids(), []uint64{4, 3, 2, 7}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	p.last[9] = 2
	if got, want := ids(), []uint64{2, 4, 3, 7}; !slices.Equal(got, want) {
		t.Fatalf("order after node 2 served %v, want %v", got, want)
	}
	p.failed[2] = time.Now()
	p.failed[3] = time.Now().Add(-2 * peerSuspectFor)
	if got, want := ids(), []uint64{4, 3, 7, 2}; !slices.Equal(got, want) {
		t.Fatalf("order after node 2 failed %v, want %v", got, want)
	}
}

// TestPeerErrorsKeepTheirType checks that an error crosses the peer protocol as the
// serving node's typed error.
func TestPeerErrorsKeepTheirType(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: x", ErrNotFound), fmt.Errorf("%w: x", log.ErrIndeterminate), fmt.Errorf("%w: x", log.ErrClosed),
		fmt.Errorf("%w: x", log.ErrNotHosted), fmt.Errorf("%w: x", query.ErrTooExpensive), fmt.Errorf("%w: x", ErrInvalidArgument),
	} {
		back := encodePeerError(err).decode(2)
		var want error
		switch {
		case errors.Is(err, ErrNotFound):
			want = ErrNotFound
		case errors.Is(err, log.ErrIndeterminate):
			want = ErrIndeterminate
		case errors.Is(err, log.ErrClosed):
			want = ErrUnavailable
		case errors.Is(err, log.ErrNotHosted):
			want = ErrNotHosted
		case errors.Is(err, query.ErrTooExpensive):
			want = query.ErrTooExpensive
		default:
			want = ErrInvalidArgument
		}
		if !errors.Is(back, want) {
			t.Errorf("%v came back as %v, not %v", err, back, want)
		}
	}
	if back := encodePeerError(errors.New("disk on fire")).decode(2); errors.Is(back, ErrUnavailable) || back.Error() != "db: node 2: disk on fire" {
		t.Errorf("an untyped error came back as %v", back)
	}
}

// The caller's deadline travels with a peer call: a head long poll, which waits up to
// peerHeadWait for the shard's head to move, ends when the caller stops waiting.
func TestPeerCallKeepsTheCallersDeadline(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	call := fmt.Appendf(nil, `{"shard":1,"after":%d}`, d.hub.Head(1)+1000)
	start := time.Now()
	env := d.ServePeer(context.Background(), "head", call, "100")
	if took := time.Since(start); took >= peerHeadWait {
		t.Fatalf("the head call took %s: it waited out its own %s, not the caller's 100 ms", took, peerHeadWait)
	}
	var got peerEnvelope
	if err := json.Unmarshal(env, &got); err != nil || got.Err != nil || string(got.OK) != strconv.FormatUint(d.hub.Head(1), 10) {
		t.Fatalf("head answered %s (%v), want the current head %d", env, err, d.hub.Head(1))
	}
}

// Only a request no connection carried marks a node unreachable (a proposal may then go
// to the next node); one that went out and got no answer is lost instead.
func TestPeerUnsentCallsAreUnreachable(t *testing.T) {
	p := newPeers(1, nil)
	p.client.Timeout = 5 * time.Second
	ln, err := net.Listen("tcp", loopback.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n := meta.Node{ID: 2, HTTPAddr: ln.Addr().String()}
	done := make(chan struct{})
	go func() { // answers nothing: reads the request, then hangs up
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}()
	ctx := context.Background()
	if err := p.do(ctx, n, "get", []byte("{}"), nil); !errors.Is(err, errPeerLost) {
		t.Fatalf("a request that went out and got no answer: %v, want lost", err)
	}
	ln.Close()
	<-done
	if err := p.do(ctx, n, "get", []byte("{}"), nil); !errors.Is(err, errPeerUnreachable) {
		t.Fatalf("a refused connection: %v, want unreachable", err)
	}
	if err := p.do(ctx, meta.Node{ID: 3, HTTPAddr: "no-such-host.invalid:7070"}, "get", []byte("{}"), nil); !errors.Is(err, errPeerUnreachable) {
		t.Fatalf("a name that does not resolve: %v, want unreachable", err)
	}
	expired, cancel := context.WithTimeout(ctx, -time.Second)
	defer cancel()
	if err := p.do(expired, n, "get", []byte("{}"), nil); !errors.Is(err, errPeerUnreachable) {
		t.Fatalf("a deadline passed before any connection: %v, want unreachable", err)
	}
}
