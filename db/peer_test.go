package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	p := newPeers(1, nil, nil)
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
		back := decodePeerError(encodePeerError(err), 2)
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
	if back := decodePeerError(encodePeerError(errors.New("disk on fire")), 2); errors.Is(back, ErrUnavailable) || back.Error() != "db: node 2: disk on fire" {
		t.Errorf("an untyped error came back as %v", back)
	}
}

// A served call ends with its context: a head long poll, which waits up to peerHeadWait
// for the shard's head to move, answers the current head when the caller's deadline
// passes. (gateway/peer checks that the deadline crosses the network.)
func TestServedPeerCallEndsWithItsContext(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	call := fmt.Appendf(nil, `{"shard":1,"after":%d}`, d.hub.Head(1)+1000)
	start := time.Now()
	out, err := d.ServePeer(ctx, "head", call)
	if took := time.Since(start); took >= peerHeadWait {
		t.Fatalf("the head call took %s: it waited out its own %s, not its context's 100 ms", took, peerHeadWait)
	}
	if err != nil || string(out) != strconv.FormatUint(d.hub.Head(1), 10) {
		t.Fatalf("head answered %s (%v), want the current head %d", out, err, d.hub.Head(1))
	}
	// A call that is not served answers a typed error: an unknown shard.
	if _, err := d.ServePeer(context.Background(), "get", []byte(`{"shard":99,"collection":"c","id":"x"}`)); err == nil {
		t.Fatal("a call for shard 99 of 2 was served")
	} else if pe, ok := err.(*PeerError); !ok || pe.Kind != "invalid_argument" {
		t.Fatalf("a call for shard 99 of 2 answered %#v, want a PeerError of kind invalid_argument", err)
	}
}

// PeerOps lists exactly the operations ServePeer serves: each is known (a call with
// arguments for no shard is refused as an invalid argument, not as an unknown operation).
func TestPeerOpsAreServed(t *testing.T) {
	d := openDB(t, t.TempDir(), loopback.FreeAddr(t))
	defer d.Close()
	for _, op := range append(slices.Clone(PeerOps), "no-such-op") {
		_, err := d.ServePeer(context.Background(), op, []byte(`{"shard":0}`))
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Kind != "invalid_argument" {
			t.Fatalf("%s with shard 0: %v, want invalid_argument", op, err)
		}
		if unknown := strings.Contains(pe.Msg, "no peer operation"); unknown != (op == "no-such-op") {
			t.Errorf("%s: %q", op, pe.Msg)
		}
	}
}
