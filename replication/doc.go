// Package replication ships a datacenter's committed log to other datacenters through
// Kafka and applies theirs. It is the only package that imports franz-go.
//
// Each datacenter is its own cluster and its local log stays the single source of truth.
// Replication is two loops around Kafka:
//
//   - The shipper reads the local change feed (db.Subscribe with resume tokens) and
//     produces every event whose origin is this datacenter, and whose collection policy
//     replicates, to the topic of this datacenter (TopicPrefix + DC, created if missing).
//     The producer is idempotent with acks=all; the record key is "collection/id", so
//     one document's events stay in one partition, in order. How far Kafka has
//     acknowledged is kept in memory (for sync-mode writes, through WaitShipped) and in a
//     small fsynced file (written atomically, only ever naming a position up to which
//     every event was acknowledged), from which the shipper resumes after a restart or a
//     broker outage. A resumed shipper may ship an event twice; the applier's dedupe
//     makes that harmless.
//
//   - The applier is a Kafka consumer group per local datacenter over the other
//     datacenters' topics (named, or every topic with the prefix but ours). It decodes a
//     polled batch into db.RemoteEvent values (Stream = partition), skips those the
//     origin's policy does not send here, hands the rest to db.ApplyRemote, and commits
//     the offsets only after that returned. A restart redelivers what was not committed;
//     ApplyRemote dedupes by (origin, shard, stream) high-water index and by vector
//     clock, so each remote event takes effect once.
//
// Records are readable by ordinary Kafka tooling: a JSON value with a Debezium-style
// envelope (before, after, op c/u/d, source, ts_ms, plus the document's vector clock)
// and CloudEvents headers (ce_id, ce_source, ce_type, ce_time, ce_specversion) next to
// the headers the applier reads (aerolith_origin, aerolith_shard, aerolith_index).
//
// A Replicator owns both loops: New, then Start, then Close (idempotent), which stops
// the goroutines and waits for them. Status and the Prometheus collector may be called
// from any goroutine. In a datacenter of several nodes exactly one node should ship
// (Config.Ship); every node may apply (the consumer group splits the partitions).
//
// Goroutines: the shipper's feed loop and its progress writer; the applier's poll loop;
// franz-go's own, stopped by closing its clients. Locks: shipper.mu and applier.mu guard
// their status and are never held while calling the database or Kafka.
package replication
