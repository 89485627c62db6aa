// Package log is aerolithsDB's replicated log: one dragonboat raft group (shard) per slice
// of the key space, every write an event appended to its shard. It is the only package
// that imports dragonboat.
//
// What it owns:
//
//   - Host: a dragonboat NodeHost running this node's replica of every shard it holds. Propose
//     appends an opaque command to a shard and returns what the state machine made of it;
//     ReadBarrier waits until the local replica has applied everything committed before
//     the call (raft ReadIndex), after which local reads are linearizable.
//
//   - Group commit: concurrent commands to one shard are coalesced into one raft entry (a
//     frame of commands), so one fsync and one raft round carry many writes.
//
//   - StateMachine: the contract the materializer fulfils; an adapter presents it to
//     dragonboat as an on-disk state machine.
//
//   - Event, its versioned binary Codec (zstd for large bodies) and its chain Hash;
//     Timestamp and Clock, the hybrid logical clock assigned at proposal.
//
//   - Membership changes (add non-voting, promote, remove, leader transfer) and replica
//     ids: ReplicaID(node, generation) puts the node id in the low 32 bits. A node whose
//     replica was removed from a shard rejoins it under the next generation (Rejoin),
//     keeping the state it applied; replicas.json in the data directory records the ids
//     a node runs and which of its replicas joined, so restarts resume them as they were.
//
//   - Placement: a node may hold no replica of a data shard. Drop takes its replica away
//     after a member removed it from the shard (stopped, raft data removed, recorded in
//     replicas.json, so restarts leave it out); every per-shard call then returns
//     ErrNotHosted at once, and Ready, WaitReady, Drain and Status pass the shard over.
//     Adopt starts a replica again, as a new, empty, joining non-voting one under a
//     later replica id, which catches up from the leader. The caller drops the shard's
//     materialized state between the two (materializer.Materializer.Drop): Drop returns
//     after the state machine was closed, Adopt refuses a state machine that holds state.
//
// Routing: a document lives in shard ShardOf(collection, id) = fnv64a(collection, 0, id)
// mod shards + 1. Shard ids start at 1.
//
// Outcomes of Propose: nil error means committed and applied; ErrUnavailable means the
// command was never proposed (safe to retry); ErrIndeterminate means it may still commit,
// so callers retry only with a command the state machine deduplicates.
//
// Goroutines: each shard has a batcher loop owned by the Host plus at most MaxInFlight
// proposal goroutines; Close stops them and waits. Host methods are safe for concurrent
// use. The raft log is compacted behind snapshots: it is never the history. History lives
// in the event store the materializer writes.
package log
