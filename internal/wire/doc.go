// Package wire holds the append-style binary primitives shared by the log's event codec and
// the materializer's command codec: unsigned varints, fixed 64-bit integers and
// length-prefixed byte strings. It owns no format of its own; callers version theirs.
//
// A Reader never panics on malformed input: the first error sticks and every later read
// returns a zero value, so a decoder reads everything and checks Err once.
package wire
