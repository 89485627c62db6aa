// Package peercall holds what the two ends of the peer protocol share: the error a
// serving node answers a call with, and the mark of a call that never reached its node.
// The database (db) makes and serves the calls; the transport (gateway/peer) carries
// them between nodes. Neither imports the other, and both import this.
package peercall
