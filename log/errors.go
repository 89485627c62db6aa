package log

import "errors"

var (
	// ErrCorruptEvent is returned when an encoded event cannot be decoded.
	ErrCorruptEvent = errors.New("log: corrupt event")
	// ErrCorruptEntry is returned when a raft entry's framing cannot be decoded.
	ErrCorruptEntry = errors.New("log: corrupt entry")
	// ErrIndeterminate is returned when a proposal's outcome is unknown: it timed out or the
	// node stopped after it was handed to raft. It may still commit.
	ErrIndeterminate = errors.New("log: outcome unknown")
	// ErrUnavailable is returned when the log cannot take a proposal or serve a read now
	// (no leader yet, shutting down, overloaded) and nothing was proposed. Safe to retry.
	ErrUnavailable = errors.New("log: unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("log: closed")
	// ErrUnknownShard is returned for a shard this host does not run.
	ErrUnknownShard = errors.New("log: unknown shard")
	// ErrNotHosted is returned at once for a data shard this node holds no replica of
	// (Host.Drop): another node serves it. Nothing was proposed or read.
	ErrNotHosted = errors.New("log: this node holds no replica of the shard")
)
