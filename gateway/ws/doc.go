// Package ws serves change streams and live queries on GET /v1/changes, over WebSocket and
// over Server-Sent Events (Accept: text/event-stream). It registers on the REST gateway's
// fiber app and translates: subscriptions come from db.Subscribe (package feed does the
// reading, ordering and tokens), live queries re-run db.Query; nothing here decides what an
// event is. docs/api.md ("Change streams") is the wire contract.
//
// # Goroutines
//
// A WebSocket connection has a reader (the handler goroutine fasthttp gives the hijacked
// connection: it reads client messages and starts and stops subscriptions), one writer
// (the only goroutine that writes data frames; it also sends pings), and one goroutine per
// subscription, which pulls from its feed.Subscription and hands encoded messages to the
// writer through the connection's bounded queue. When the reader returns (client gone,
// close frame, missed pong, write failure), the connection cancels its context, waits for
// every subscription goroutine, stops the writer and only then returns, so nothing of a
// connection outlives its handler. An SSE stream is one goroutine (fasthttp's body stream
// writer) that pulls from its subscription and writes frames.
//
// # Slow consumers
//
// The feed is pull-based: a subscription reads the event store only when Next is called.
// A subscription goroutine blocks when the connection's queue (Limits.QueueLength messages)
// is full, so it stops calling Next, and a stalled client costs at most the queue, the
// feed's read-ahead (64 events per shard) and the kernel's socket buffers. Writers are
// never slowed and nothing grows: the subscriber just falls behind (its lag grows) and
// catches up from the event store when it reads again. A client that accepts no frame for
// Limits.WriteTimeout, or answers no ping within Limits.PongTimeout, is disconnected; it
// resumes with its last token.
//
// # Shutdown
//
// fasthttp does not track hijacked connections, so the Server does: Close sends every
// WebSocket connection {"type":"closing","reason":"shutdown","tokens":{…}} with the token
// of the last message written for each change subscription, then a close frame 1001
// (going away), and ends every SSE stream with a closing event; it waits until every
// connection's goroutines have returned. The node calls Close before shutting fiber down
// and before closing the database.
//
// # Locks
//
// Server.mu guards the sets of connections and streams; conn.mu guards a connection's
// subscriptions; conn.wmu orders write deadlines and the end of the connection between
// the writer, Close and abort; conn.rmu orders read deadlines between the reader's pong
// handler and the writer's close. No lock is held while another is taken.
package ws
