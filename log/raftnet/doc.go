// Package raftnet carries raft's messages and snapshot chunks between nodes over TCP: it
// is the transport the log's NodeHost runs on (config.TransportFactory).
//
// It exists for one property dragonboat's built-in transport lacks: a stream whose peer
// went away is noticed as soon as the peer's kernel says so, and the next batch goes out on
// a new connection. The built-in transport never reads from the streams it sends on, so
// after a peer restarts its first batch disappears into the old connection and the second
// fails; the failure trips a circuit breaker that refuses every send to that node for up
// to a second and a half. In a rolling restart that refusal lands on a shard whose next
// voter is just stopping, and writes stall for longer than an election timeout.
//
// Here each outgoing stream reads its connection (the receiver never writes on it, so any
// read that returns means the stream is gone), and SendMessageBatch redials once, at once,
// when the stream is gone or a write fails. Only a failed redial reaches dragonboat as an
// error, so its breaker trips only when the node cannot be dialled. On Linux a stream
// whose data stays unacknowledged for UserTimeout is aborted by the kernel
// (TCP_USER_TIMEOUT): after a partition heals the next batch redials instead of waiting
// out TCP's retransmission backoff, which grows to minutes.
//
// The wire format is ours and versioned by its magic byte: a frame is a 10-byte header
// (magic, kind, payload length, CRC-32C of the payload) and a protobuf payload, a
// raftpb.MessageBatch or a raftpb.Chunk. A receiver closes a stream on any frame it cannot
// read, and on a chunk the chunk handler rejects. Snapshot streams are not redialled: a
// snapshot that fails midway is sent again by raft.
package raftnet
