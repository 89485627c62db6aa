package raftnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/internal/tcpopt"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	dto "github.com/prometheus/client_model/go"
)

// peer is a started transport whose handlers hand what they receive to channels.
type peer struct {
	tr      raftio.ITransport
	batches chan pb.MessageBatch
	chunks  chan pb.Chunk
}

func startPeer(t *testing.T, addr string, acceptChunk func(pb.Chunk) bool) *peer {
	t.Helper()
	return startPeerWith(t, Factory{}, addr, acceptChunk)
}

func startPeerWith(t *testing.T, f Factory, addr string, acceptChunk func(pb.Chunk) bool) *peer {
	t.Helper()
	p := &peer{batches: make(chan pb.MessageBatch, 64), chunks: make(chan pb.Chunk, 64)}
	if acceptChunk == nil {
		acceptChunk = func(pb.Chunk) bool { return true }
	}
	p.tr = f.Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { p.batches <- b },
		func(c pb.Chunk) bool { p.chunks <- c; return acceptChunk(c) })
	if err := p.tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.tr.Close() })
	return p
}

// stream returns a message stream of p to addr, closed when the test ends.
func (p *peer) stream(t *testing.T, addr string) raftio.IConnection {
	t.Helper()
	conn, err := p.tr.GetConnection(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func batch(shard uint64, cmd string) pb.MessageBatch {
	return pb.MessageBatch{
		DeploymentId:  1,
		SourceAddress: "127.0.0.1:1",
		BinVer:        raftio.TransportBinVersion,
		Requests: []pb.Message{{
			Type: pb.Replicate, ShardID: shard, From: 1, To: 2, Term: 3, LogIndex: 4,
			Entries: []pb.Entry{{Term: 3, Index: 5, Cmd: []byte(cmd)}},
		}},
	}
}

// receive waits for the next batch and checks it carries cmd.
func (p *peer) receive(t *testing.T, cmd string) {
	t.Helper()
	select {
	case b := <-p.batches:
		if len(b.Requests) != 1 || len(b.Requests[0].Entries) != 1 {
			t.Fatalf("received %+v, want one message with one entry", b)
		}
		if got := string(b.Requests[0].Entries[0].Cmd); got != cmd {
			t.Fatalf("received entry %q, want %q", got, cmd)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("batch %q not received within 5s", cmd)
	}
}

func TestBatchesArriveInOrder(t *testing.T) {
	addrA, addrB := loopback.FreeAddr(t), loopback.FreeAddr(t)
	a, b := startPeer(t, addrA, nil), startPeer(t, addrB, nil)
	conn := a.stream(t, addrB)
	big := string(bytes.Repeat([]byte("x"), 3<<20)) // above the reused read buffer
	cmds := []string{"one", big, "three", "four"}
	for _, c := range cmds {
		if err := conn.SendMessageBatch(batch(7, c)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		b.receive(t, c)
	}
}

// The property the package exists for: a stream to a node that restarted delivers the
// next batch, with no error and nothing lost.
func TestStreamSurvivesPeerRestart(t *testing.T) {
	addrA, addrB := loopback.FreeAddr(t), loopback.FreeAddr(t)
	a := startPeer(t, addrA, nil)
	b := startPeer(t, addrB, nil)
	conn := a.stream(t, addrB)
	if err := conn.SendMessageBatch(batch(1, "before")); err != nil {
		t.Fatal(err)
	}
	b.receive(t, "before")

	for i, cmd := range []string{"after first restart", "after second restart"} {
		if err := b.tr.Close(); err != nil {
			t.Fatal(err)
		}
		b = startPeer(t, addrB, nil)
		// Once the kernel has the old stream's end, the next batch goes out on a new one.
		waitGone(t, conn)
		if err := conn.SendMessageBatch(batch(1, cmd)); err != nil {
			t.Fatalf("restart %d: send: %v", i+1, err)
		}
		b.receive(t, cmd)
	}
}

// waitGone waits until the kernel reports the stream's connection ended.
func waitGone(t *testing.T, conn raftio.IConnection) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for tcpopt.Alive(conn.(*stream).c) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the stream to a closed peer still stands after 5s")
		}
	}
}

// Batches to a node that cannot be dialled are dropped without an error for Grace, so
// dragonboat's circuit breaker does not trip on a restart; after that sends fail.
func TestStreamToStoppedPeer(t *testing.T) {
	const grace = 300 * time.Millisecond
	addrA, addrB := loopback.FreeAddr(t), loopback.FreeAddr(t)
	a := startPeerWith(t, Factory{Grace: grace}, addrA, nil)
	b := startPeer(t, addrB, nil)
	conn := a.stream(t, addrB)
	if err := conn.SendMessageBatch(batch(1, "first")); err != nil {
		t.Fatal(err)
	}
	b.receive(t, "first")
	b.tr.Close()
	waitGone(t, conn)
	stopped := time.Now()
	var failed time.Duration
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for failed == 0 {
		err := conn.SendMessageBatch(batch(1, "lost"))
		if err != nil {
			failed = time.Since(stopped)
			break
		}
		if time.Since(stopped) > 5*time.Second {
			t.Fatal("sends to a stopped node kept succeeding for 5s")
		}
		<-tick.C
	}
	if failed < grace {
		t.Fatalf("a send failed %s after the node stopped, within the grace of %s", failed, grace)
	}
	var dropped dto.Metric
	if err := a.tr.(*Transport).metrics.dropped.Write(&dropped); err != nil || dropped.GetCounter().GetValue() == 0 {
		t.Fatalf("no batch counted as dropped (%v)", err)
	}
	// A stream got while the node is down is returned; its sends fail.
	late := a.stream(t, addrB)
	if err := late.SendMessageBatch(batch(1, "lost")); err == nil {
		t.Fatal("a send to a node down for longer than the grace succeeded")
	}
	// Back, the node is reached on the first batch of the stream dragonboat gets next.
	b = startPeer(t, addrB, nil)
	next := a.stream(t, addrB)
	if err := next.SendMessageBatch(batch(1, "back")); err != nil {
		t.Fatal(err)
	}
	b.receive(t, "back")
}

// A TimeoutNow is sent again within the transfer window, alone in its batch.
func TestTimeoutNowRepeated(t *testing.T) {
	addrA, addrB := loopback.FreeAddr(t), loopback.FreeAddr(t)
	a := startPeerWith(t, Factory{TransferWindow: 160 * time.Millisecond}, addrA, nil)
	b := startPeer(t, addrB, nil)
	conn := a.stream(t, addrB)
	tn := batch(3, "entry")
	tn.Requests = append(tn.Requests, pb.Message{Type: pb.TimeoutNow, ShardID: 3, From: 1, To: 2, Term: 7})
	if err := conn.SendMessageBatch(tn); err != nil {
		t.Fatal(err)
	}
	if err := conn.SendMessageBatch(batch(3, "plain")); err != nil {
		t.Fatal(err)
	}
	var timeoutNows, plain int
	deadline := time.After(5 * time.Second)
	for timeoutNows < 5 || plain < 1 {
		select {
		case got := <-b.batches:
			for _, m := range got.Requests {
				switch {
				case m.Type == pb.TimeoutNow && m.ShardID == 3 && m.Term == 7:
					timeoutNows++
				case m.Type == pb.Replicate && string(m.Entries[0].Cmd) == "plain":
					plain++
				}
			}
			if got.DeploymentId != 1 || got.BinVer != raftio.TransportBinVersion {
				t.Fatalf("batch header lost: %+v", got)
			}
		case <-deadline:
			t.Fatalf("received %d TimeoutNow messages and %d plain batches in 5s, want 5 and 1", timeoutNows, plain)
		}
	}
	if timeoutNows != 5 || plain != 1 {
		t.Fatalf("received %d TimeoutNow messages and %d plain batches, want 5 and 1", timeoutNows, plain)
	}
}

func TestChunks(t *testing.T) {
	addrA, addrB := loopback.FreeAddr(t), loopback.FreeAddr(t)
	a := startPeer(t, addrA, nil)
	b := startPeer(t, addrB, func(c pb.Chunk) bool { return c.ChunkId < 2 })
	sc, err := a.tr.GetSnapshotConnection(context.Background(), addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for id := uint64(0); id < 3; id++ {
		if err := sc.SendChunk(pb.Chunk{ShardID: 1, ReplicaID: 2, From: 1, ChunkId: id, ChunkCount: 3, Data: []byte{byte(id)}}); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(0); id < 3; id++ {
		select {
		case c := <-b.chunks:
			if c.ChunkId != id || !bytes.Equal(c.Data, []byte{byte(id)}) {
				t.Fatalf("chunk %d: got id %d data %v", id, c.ChunkId, c.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("chunk %d not received", id)
		}
	}
	// The handler rejected chunk 2, so the receiver closed the stream: sends fail soon.
	deadline := time.Now().Add(5 * time.Second)
	for sc.SendChunk(pb.Chunk{ShardID: 1, ChunkId: 3, Data: make([]byte, 64<<10)}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("chunks kept being accepted for 5s after the receiver rejected one")
		}
	}
}

// A frame the receiver cannot read ends the stream without reaching the handler.
func TestBadFramesCloseTheStream(t *testing.T) {
	good := frame(nil, kindBatch, 1<<10, func() *pb.MessageBatch { b := batch(1, "good"); return &b }())
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff
	long := bytes.Clone(good)
	long[2] = 0xff // length far above maxFrame
	cases := map[string][]byte{
		"checksum":   corrupt,
		"magic":      append([]byte{0x00}, good[1:]...),
		"kind":       append([]byte{magic, 9}, good[2:]...),
		"too long":   long,
		"not protob": frameRaw(kindBatch, []byte{0xff, 0xff, 0xff}),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			addr := loopback.FreeAddr(t)
			p := startPeer(t, addr, nil)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(append(bad, good...)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("the receiver did not close the stream: %v", err)
			}
			select {
			case b := <-p.batches:
				t.Fatalf("a batch reached the handler: %+v", b)
			default:
			}
		})
	}
}

func frameRaw(kind byte, payload []byte) []byte {
	r := rawMessage(payload)
	return frame(nil, kind, len(payload), r)
}

type rawMessage []byte

func (r rawMessage) MarshalTo(b []byte) (int, error) { return copy(b, r), nil }

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func TestValidate(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7071": true, "node-3:7071": true, "[::1]:1": true,
		"127.0.0.1": false, ":7071": false, "host:0": false, "host:99999": false, "host:x": false,
	} {
		if got := (Factory{}).Validate(addr); got != want {
			t.Errorf("Validate(%q) = %v, want %v", addr, got, want)
		}
	}
}
