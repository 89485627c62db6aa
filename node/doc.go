// Package node runs one aerolith node in-process: the database (log, materializer, tiers)
// and the gateways in front of it, with one Prometheus registry. cmd/aerolith's server
// command, bench's embedded mode and end-to-end tests all start nodes through it.
//
// Start returns once the node is ready and listening; Close shuts the gateways down
// gracefully (stop accepting, finish in-flight requests) and then closes the database.
// Change streams go first: every WebSocket client gets a closing message with its resume
// tokens and every SSE stream a closing event, and Close waits for them to end, since
// fiber's shutdown does not wait for hijacked WebSocket connections.
package node
