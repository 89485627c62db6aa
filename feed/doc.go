// Package feed is the change feed: it turns a node's event store into subscriptions that
// never lose or repeat an event and can resume from any point.
//
// A Subscription reads committed events shard by shard from the event store through the
// Store interface (db implements it), in each shard's index order, and returns them one
// at a time from Next. It is pull-based: it reads only as fast as its consumer asks, so a
// slow consumer holds at most a small read-ahead per shard and never slows writes or
// grows memory. Catch-up and live delivery are the same code path — live just means the
// subscription has reached the head the Hub reports and waits for the next commit — so
// there is no seam between them: no gap, no duplicate. A caught_up message marks the
// first time every shard's head was reached.
//
// Positions and tokens: every event has a position (shard, index), gap-free per shard. A
// Token records, per shard, the index of the last event a subscriber has passed, whether
// or not the event matched its filter. Tokens travel as opaque, versioned strings; they
// advance with Checkpoint messages while the filter matches nothing, so an idle
// subscriber's token stays fresh.
//
// Concurrency: a Subscription belongs to one goroutine. The Hub is safe for concurrent
// use; the materializer calls Hub.Advance after each committed batch.
package feed
