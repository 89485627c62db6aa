package replication

import "errors"

// Errors of the replication package.
var (
	// ErrClosed is returned by WaitShipped once the replicator is closed.
	ErrClosed = errors.New("replication: closed")
	// ErrNotShipping is returned by WaitShipped when this node does not ship.
	ErrNotShipping = errors.New("replication: this node does not ship")
	// ErrInvalidRecord wraps a Kafka record that is not a replication record.
	ErrInvalidRecord = errors.New("replication: invalid record")
)
