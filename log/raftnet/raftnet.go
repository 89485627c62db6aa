package raftnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/internal/tcpopt"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	magic      = 0xAE // version 1 of the frame format
	headerSize = 10   // magic, kind, uint32 length, uint32 CRC-32C

	kindBatch = 1
	kindChunk = 2

	// maxFrame bounds one frame's payload. A batch holds at most dragonboat's
	// MaxMessageBatchSize (64 MiB) of messages, a chunk one snapshot chunk (2 MiB).
	maxFrame = 256 << 20
	// reuseBelow: frames up to this size are read into a buffer the stream keeps; the
	// protobuf decoders copy what they keep.
	reuseBelow = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadFrame is a frame a receiver cannot read: wrong magic, unknown kind, too long, or a
// checksum that does not match.
var errBadFrame = errors.New("raftnet: bad frame")

// Factory makes the transport of a NodeHost (NodeHostConfig.Expert.TransportFactory). The
// zero value works: defaults apply to zero fields.
type Factory struct {
	DialTimeout  time.Duration // bound on one dial (default 1s)
	WriteTimeout time.Duration // bound on writing one frame (default 5s)
	// UserTimeout is how long sent data may stay unacknowledged before the kernel aborts
	// the stream (Linux only; default 3s). It also bounds keepalive probing of idle streams.
	UserTimeout time.Duration
	// Grace is how long a node that cannot be dialled has its batches dropped silently
	// before sends to it fail (default 10s). A failed send trips dragonboat's circuit
	// breaker, which then refuses every send to that node for 0.25-1.5s, also after it is
	// back: a node that restarts within Grace is reached on the first batch after it
	// listens again.
	Grace time.Duration
	// TransferWindow is how long a leader waits for the target of a leadership transfer
	// (the shards' election timeout); a TimeoutNow is repeated within its first half.
	// Zero: not repeated.
	TransferWindow time.Duration
	Logger         *slog.Logger
	Registerer     prometheus.Registerer // nil: metrics are not registered
}

// Validate checks an address peers dial: host:port with a numeric port.
func (Factory) Validate(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

// Create returns the transport of the NodeHost configured by nhc. It listens on
// nhc.ListenAddress, or on nhc.RaftAddress when that is empty, once Start is called.
func (f Factory) Create(nhc config.NodeHostConfig, onBatch raftio.MessageHandler, onChunk raftio.ChunkHandler) raftio.ITransport {
	if f.DialTimeout <= 0 {
		f.DialTimeout = time.Second
	}
	if f.WriteTimeout <= 0 {
		f.WriteTimeout = 5 * time.Second
	}
	if f.UserTimeout <= 0 {
		f.UserTimeout = 3 * time.Second
	}
	if f.Grace <= 0 {
		f.Grace = 10 * time.Second
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	addr := nhc.ListenAddress
	if addr == "" {
		addr = nhc.RaftAddress
	}
	return &Transport{
		cfg:     f,
		addr:    addr,
		onBatch: onBatch,
		onChunk: onChunk,
		metrics: metricsFor(f.Registerer),
		conns:   make(map[net.Conn]struct{}),
		down:    make(map[string]time.Time),
		stop:    make(chan struct{}),
	}
}

// Transport is one NodeHost's end of the raft network: a listener for the streams other
// nodes send on, and the streams this node sends on.
type Transport struct {
	cfg     Factory
	addr    string
	onBatch raftio.MessageHandler
	onChunk raftio.ChunkHandler
	metrics *metrics

	ln      net.Listener
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // every open connection, both directions, closed by Close
	down    map[string]time.Time  // target → since when dialling it fails
	closing bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ raftio.ITransport = (*Transport)(nil)

// Name names the transport in dragonboat's logs.
func (t *Transport) Name() string { return "aerolith-raftnet" }

// Start listens on the raft address and serves the streams peers open.
func (t *Transport) Start() error {
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("raftnet: listen on %s: %w", t.addr, err)
	}
	t.ln = ln
	t.wg.Add(1)
	go t.accept()
	return nil
}

// Close stops listening, closes every stream in both directions and waits for the
// goroutines that served them.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	close(t.stop)
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	var err error
	if t.ln != nil {
		err = t.ln.Close()
	}
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// adopt records c so that Close closes it, and runs fn (when not nil) in a goroutine
// Close waits for. It returns false, with c closed, when the transport is closing.
func (t *Transport) adopt(c net.Conn, fn func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	if fn != nil {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			fn()
		}()
	}
	return true
}

// release forgets c and closes it.
func (t *Transport) release(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *Transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.cfg.Logger.Warn("raft transport stopped accepting", "addr", t.addr, "err", err)
			return
		}
		t.tune(c)
		if !t.adopt(c, func() { t.serve(c) }) {
			return
		}
	}
}

// serve reads frames from one peer's stream until it ends or a frame is bad.
func (t *Transport) serve(c net.Conn) {
	defer t.release(c)
	r := frameReader{r: c}
	bad := func(what string, err error) {
		t.metrics.badFrames.Inc()
		t.cfg.Logger.Warn("raft transport closed a stream: "+what, "from", c.RemoteAddr().String(), "err", err)
	}
	for {
		kind, payload, err := r.next()
		if err != nil {
			if errors.Is(err, errBadFrame) {
				bad("unreadable frame", err)
			}
			return
		}
		switch kind {
		case kindBatch:
			var b pb.MessageBatch
			if err := b.Unmarshal(payload); err != nil {
				bad("undecodable batch", err)
				return
			}
			t.onBatch(b)
		case kindChunk:
			var ch pb.Chunk
			if err := ch.Unmarshal(payload); err != nil {
				bad("undecodable chunk", err)
				return
			}
			if !t.onChunk(ch) {
				return
			}
		}
	}
}

// tune sets up a stream in either direction: no Nagle delay, keepalive probes on idle
// streams, and (on Linux) TCP_USER_TIMEOUT, so that data left unacknowledged (a partition,
// a peer gone without a word) aborts the stream after UserTimeout instead of TCP's minutes
// of retransmission.
func (t *Transport) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(true)
	tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: t.cfg.UserTimeout, Interval: t.cfg.UserTimeout / 3, Count: 3})
	if err := tcpopt.SetUserTimeout(tc, t.cfg.UserTimeout); err != nil {
		t.cfg.Logger.Debug("raft transport: TCP_USER_TIMEOUT not set", "err", err)
	}
}

// dial opens a stream to target.
func (t *Transport) dial(ctx context.Context, target string) (net.Conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		t.metrics.dialFailures.Inc()
		return nil, err
	}
	t.tune(c)
	if !t.adopt(c, nil) {
		return nil, net.ErrClosed
	}
	return c, nil
}

// GetConnection returns a stream for raft messages to target. It dials on its first batch
// and again whenever the connection has ended.
func (t *Transport) GetConnection(_ context.Context, target string) (raftio.IConnection, error) {
	return &stream{t: t, target: target}, nil
}

// GetSnapshotConnection returns a stream for one snapshot's chunks to target.
func (t *Transport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	c, err := t.dial(ctx, target)
	if err != nil {
		return nil, err
	}
	return &chunkStream{t: t, c: c}, nil
}

// unreachable notes that target could not be dialled and decides what the caller reports:
// nothing (the batch is dropped, as a network drops it) while target has been unreachable
// for less than Grace, err after that.
func (t *Transport) unreachable(target string, err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	since, ok := t.down[target]
	if !ok {
		since = time.Now()
		t.down[target] = since
	}
	if time.Since(since) < t.cfg.Grace {
		t.metrics.dropped.Inc()
		return nil
	}
	return err
}

// reachable notes that target was dialled.
func (t *Transport) reachable(target string) {
	t.mu.Lock()
	delete(t.down, target)
	t.mu.Unlock()
}

// stream sends message batches to one node: dragonboat's send worker for that node, and
// the timers that repeat a TimeoutNow.
type stream struct {
	t          *Transport
	target     string
	mu         sync.Mutex
	c          net.Conn // nil until dialled, and after it ended
	buf        []byte
	failedDial time.Time
	closed     bool
}

var _ raftio.IConnection = (*stream)(nil)

// errDialedRecently: a dial of the target failed less than redialEvery ago.
var errDialedRecently = errors.New("raftnet: target unreachable, dialled moments ago")

// redialEvery bounds how often a stream dials a node it could not reach.
const redialEvery = 20 * time.Millisecond

// SendMessageBatch writes one batch; a batch carrying a TimeoutNow has it sent again
// within TransferWindow (see Factory).
func (s *stream) SendMessageBatch(batch pb.MessageBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if err := s.send(&batch); err != nil {
		return err
	}
	s.repeatTimeoutNow(batch)
	return nil
}

// send writes batch. A connection the kernel reports ended, or a failed write, is dialled
// again and the batch written on the new connection. A batch written twice is harmless:
// raft ignores messages it has already seen.
func (s *stream) send(batch *pb.MessageBatch) error {
	s.buf = frame(s.buf, kindBatch, batch.SizeUpperLimit(), batch)
	if s.c != nil {
		if tcpopt.Alive(s.c) {
			err := s.write()
			if err == nil {
				return nil
			}
			s.t.cfg.Logger.Debug("raft stream write failed; dialling again", "to", s.target, "err", err)
		}
		s.t.release(s.c)
		s.c = nil
		s.t.metrics.redials.Inc()
	}
	if time.Since(s.failedDial) < redialEvery {
		return s.t.unreachable(s.target, errDialedRecently)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.t.cfg.DialTimeout)
	defer cancel()
	c, err := s.t.dial(ctx, s.target)
	if err != nil {
		s.failedDial = time.Now()
		return s.t.unreachable(s.target, err)
	}
	s.t.reachable(s.target)
	s.c = c
	return s.write()
}

func (s *stream) write() error {
	s.c.SetWriteDeadline(time.Now().Add(s.t.cfg.WriteTimeout))
	_, err := s.c.Write(s.buf)
	return err
}

// repeatTimeoutNow schedules, for each TimeoutNow in batch, the same message again at
// 1/16, 1/8, 1/4 and 1/2 of TransferWindow. The target of a leadership transfer refuses to
// campaign while it holds committed entries it has not applied, and under load it nearly
// always does when the TimeoutNow arrives: the acknowledgement that made it eligible also
// committed entries it has yet to apply. Refused, the transfer would leave the shard
// without a leader accepting proposals for the whole window. A repeat reaches it after it
// applied them; one arriving after it won is from an older term and ignored.
func (s *stream) repeatTimeoutNow(batch pb.MessageBatch) {
	w := s.t.cfg.TransferWindow
	if w <= 0 {
		return
	}
	for _, m := range batch.Requests {
		if m.Type != pb.TimeoutNow {
			continue
		}
		again := pb.MessageBatch{DeploymentId: batch.DeploymentId, SourceAddress: batch.SourceAddress, BinVer: batch.BinVer, Requests: []pb.Message{m}}
		for _, d := range []time.Duration{w / 16, w / 8, w / 4, w / 2} {
			time.AfterFunc(d, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.closed {
					return
				}
				if err := s.send(&again); err == nil {
					s.t.metrics.repeats.Inc()
				}
			})
		}
	}
}

// Close closes the stream's connection; repeats not sent yet are dropped.
func (s *stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.c != nil {
		s.t.release(s.c)
		s.c = nil
	}
}

// chunkStream sends one snapshot's chunks.
type chunkStream struct {
	t   *Transport
	c   net.Conn
	buf []byte
}

var _ raftio.ISnapshotConnection = (*chunkStream)(nil)

// SendChunk writes one chunk.
func (s *chunkStream) SendChunk(chunk pb.Chunk) error {
	s.buf = frame(s.buf, kindChunk, chunk.Size(), &chunk)
	s.c.SetWriteDeadline(time.Now().Add(s.t.cfg.WriteTimeout))
	_, err := s.c.Write(s.buf)
	return err
}

// Close closes the stream: the receiver reads what was sent before it sees the end.
func (s *chunkStream) Close() { s.t.release(s.c) }

// marshaler is what frame needs of a raftpb message.
type marshaler interface {
	MarshalTo([]byte) (int, error)
}

// frame encodes m, of at most size bytes, as one frame of kind into buf's storage and
// returns it.
func frame(buf []byte, kind byte, size int, m marshaler) []byte {
	need := headerSize + size
	if cap(buf) < need {
		buf = make([]byte, need)
	}
	buf = buf[:need]
	n, err := m.MarshalTo(buf[headerSize:])
	if err != nil {
		// MarshalTo fails only when the buffer is short, and size is an upper bound.
		panic(fmt.Sprintf("raftnet: marshal: %v", err))
	}
	buf = buf[:headerSize+n]
	buf[0], buf[1] = magic, kind
	binary.BigEndian.PutUint32(buf[2:6], uint32(n))
	binary.BigEndian.PutUint32(buf[6:10], crc32.Checksum(buf[headerSize:], castagnoli))
	return buf
}

// frameReader reads frames from one stream.
type frameReader struct {
	r      io.Reader
	header [headerSize]byte
	buf    []byte
}

// next returns the next frame's kind and payload; the payload is valid until the next call.
func (fr *frameReader) next() (byte, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.header[:]); err != nil {
		return 0, nil, err
	}
	h := fr.header
	if h[0] != magic {
		return 0, nil, fmt.Errorf("%w: magic %#x", errBadFrame, h[0])
	}
	kind := h[1]
	if kind != kindBatch && kind != kindChunk {
		return 0, nil, fmt.Errorf("%w: kind %d", errBadFrame, kind)
	}
	n := binary.BigEndian.Uint32(h[2:6])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", errBadFrame, n, maxFrame)
	}
	var p []byte
	if n <= reuseBelow {
		if cap(fr.buf) < int(n) {
			fr.buf = make([]byte, reuseBelow)
		}
		p = fr.buf[:n]
	} else {
		p = make([]byte, n)
	}
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return 0, nil, err
	}
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(h[6:10]) {
		return 0, nil, fmt.Errorf("%w: checksum", errBadFrame)
	}
	return kind, p, nil
}
