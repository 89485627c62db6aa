// Package memory is the L1 tier: a cache of hot document records bounded in bytes (otter
// v2, S3-FIFO eviction). It holds no state of its own that matters for correctness: every
// record is also in L2, and the materializer keeps it coherent by calling Set after it
// commits a batch. Readers that miss load from L2 with Fill, which the materializer
// serializes against its own updates so that a stale load never overwrites a newer record.
//
// Safe for concurrent use.
package memory
