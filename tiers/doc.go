// Package tiers defines what the storage tiers share: the document record every tier
// returns, the key that names it, and the per-tier statistics. The tiers themselves live
// in sub-packages:
//
//   - tiers/memory (L1): a bounded-in-bytes cache of hot documents, kept coherent by the
//     materializer, which updates it after every applied batch.
//   - tiers/pebble (L2): the pebble store with the key layout of documents, versions, the
//     immutable event store, idempotency records and per-shard metadata.
//
// Later tiers (other replicas, the archive) implement the same Store contract.
package tiers
