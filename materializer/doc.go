// Package materializer is the raft state machine of every shard: it turns committed
// commands into events and projects them into the tiers.
//
// The write path through it: the gateway proposes a Command (writes to one shard with
// their conditions and idempotency keys, stamped with an HLC time at proposal); the log
// commits it and calls Shard.Apply with the entries of a raft batch. Apply decides each
// command against the current state (conditions, merge patches, idempotency records),
// assigns each resulting event its gap-free index in the shard, its version and the hash
// of the previous event, and writes in ONE pebble batch: the events into the event store,
// the current documents, their versions, collection counts, idempotency records and the
// raft index applied. Only after that batch commits does L1 see the new records.
//
// Commands of other kinds: index operations, collection policies, and remote writes —
// events of other datacenters. A remote write is dropped when its (origin, shard, stream)
// high-water index in the shard has reached it or the document's vector clock dominates
// it; otherwise it replaces the document (its clock dominates) or joins the document's
// set of concurrent versions, and the collection's conflict rule (lww, dc-priority,
// keep-both) picks the visible one. Local writes tick the document's clock at the
// command's datacenter; with keep-both siblings open they must name them all.
//
// Invariants:
//   - Apply is deterministic: it reads only the entries and the state earlier entries
//     produced; times come from the command, and a shard's event timestamps are forced to
//     increase (max(proposed, last+1)).
//   - A command applies all of its writes or none.
//   - Re-applying entries at or below the persisted applied index never happens (Open
//     returns it); entries after it are applied exactly once more after a crash, and
//     idempotency keys make a client's retried command answer instead of apply again.
//   - L1 never holds a record older than L2's: Apply updates L1 under fillMu after commit;
//     readers fill L1 from L2 under the same lock, shared.
//
// A node that holds no replica of a shard (log.Host.Drop) drops its state with
// Materializer.Drop once the log has closed the shard's state machine (Shard.Close): the
// Shard is forgotten, L1 purged under fillMu, L2's range of the shard deleted. A state
// machine of the shard made afterwards opens empty, at applied index 0.
//
// Concurrency: the log calls a Shard's methods one at a time, except SaveSnapshot, which
// reads a pebble snapshot alongside Apply. Get, History, Collections and Drop are safe
// for concurrent use; Drop must not race the log starting a replica of the same shard.
package materializer
