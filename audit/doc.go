// Package audit proves a shard's history was not altered. Every event carries the hash of
// the previous event in its shard (log.Event.Hash covers the event's metadata and the
// SHA-256 of its body), and nodes sign checkpoints — a shard's head position and hash —
// with an Ed25519 key of their own. Verify walks a range of events, recomputes every
// link and checks the checkpoints that fall in it; it names the first broken link.
//
// The package is pure: events come from the caller (the live event store, or an exported
// NDJSON file for offline verification with no server).
package audit
