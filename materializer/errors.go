package materializer

import "errors"

var (
	// ErrCorruptCommand is returned when a proposed command or its result cannot be decoded.
	ErrCorruptCommand = errors.New("materializer: corrupt command")
	// ErrNotObject is returned when a document or the result of a patch is not a JSON object.
	ErrNotObject = errors.New("materializer: not a JSON object")
	// ErrUnknownShard is returned for a shard this node does not materialize.
	ErrUnknownShard = errors.New("materializer: unknown shard")
	// ErrShardOpen is returned by Drop while a replica still drives the shard's state
	// machine: stop it first (log.Host.Drop).
	ErrShardOpen = errors.New("materializer: shard still driven by a replica")
)
