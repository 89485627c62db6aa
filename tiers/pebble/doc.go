// Package pebble is the L2 tier: one pebble database per node holding, for every shard
// replica on the node, the materialized state that the materializer writes in one batch
// per applied raft batch.
//
// Key layout (all keys of a shard share the prefix 's' + shard as 8 big-endian bytes, so
// a shard's state is one contiguous range that snapshots copy and digests hash):
//
//	a                               raft index applied (excluded from digests)
//	m                               shard meta: last event index, last timestamp, head hash
//	d coll 0x00 id                  current document record (tombstone after delete)
//	v coll 0x00 id 0x00 version     one version: event index, op, ts, principal, body after
//	e index                         the immutable event store: index → encoded log.Event
//	i request-id                    idempotency record: collection, id, stored result, expiry
//	x expiry request-id             expiry index of idempotency records
//	t expiry token                  a command's results under its retry token, until expiry
//	c coll                          live document count of a collection
//	X coll 0x00 id                  a document's vector clock, visible version's origin, siblings
//	H origin 0x00 shard stream      highest index applied from a stream of another datacenter
//	P coll                          a collection's replication policy
//
// A shard this node no longer holds is deleted whole with DropShard (one range deletion,
// synced). Writes go through Batch, which reads its own writes. Reads through DB see committed
// state. Batches commit without fsync: the raft log is the durable record and the applied
// index is committed atomically with the data, so a crash loses at most a suffix that raft
// re-applies.
//
// DB and Batch methods that read are safe for concurrent use with commits; a Batch itself
// belongs to one goroutine.
package pebble
