// Package db is one aerolith node's database: it wires the log (log.Host), the
// materializer and the tiers together and offers the operations the gateways translate
// to: Write, Batch, Get, History, Collections.
//
// The write path: validate names and body → build a materializer.Command stamped with the
// node's HLC time, its datacenter and the principal → route it to shard
// log.ShardOf(collection, id) → log.Host.Propose (group commit) → the shard's
// materializer applies it → the result comes back through the proposal.
//
// Reads are linearizable by default: a raft ReadIndex barrier on the document's shard,
// then L1, then L2. Consistency Local skips the barrier.
//
// Retries: a write whose outcome is unknown (ErrIndeterminate from the log) is resubmitted
// within the write timeout only when every write of it carries an idempotency key, which
// makes the repeat an answer rather than a second apply. Without keys the caller gets
// ErrIndeterminate.
//
// Across datacenters (remote.go): ApplyRemote proposes events of other datacenters into
// the local log, per local shard, in order; the state machine dedupes and decides them, so
// calling it again with the same events changes nothing. SetPolicy and Policy keep each
// collection's replication policy in every shard through the log. A collection in sync
// mode waits, after the local commit, on the ShipWaiter the node sets (and is refused
// before writing when none is set). ContentDigest compares datacenters.
//
// Errors are the sentinels in errors.go (and *PreconditionError, *NotShippedError); the
// gateway maps them in one table.
package db
