package db

import (
	"errors"
	"fmt"
)

var (
	ErrNotFound             = errors.New("db: not found")
	ErrInvalidCollection    = errors.New("db: invalid collection name")
	ErrInvalidID            = errors.New("db: invalid document id")
	ErrInvalidDocument      = errors.New("db: invalid document")
	ErrInvalidArgument      = errors.New("db: invalid argument")
	ErrPrecondition         = errors.New("db: precondition failed")
	ErrIdempotencyKeyReused = errors.New("db: idempotency key reused for another document")
	ErrAborted              = errors.New("db: aborted: another write in the same shard failed")
	ErrIndeterminate        = errors.New("db: outcome unknown")
	ErrUnavailable          = errors.New("db: unavailable")
	ErrIndexExists          = errors.New("db: index exists with other fields")
)

// PreconditionError reports a failed If-Match / If-None-Match with the document's live
// version (0 when it does not exist).
type PreconditionError struct {
	Current uint64
}

func (e *PreconditionError) Error() string {
	return fmt.Sprintf("db: precondition failed: current version is %d", e.Current)
}

// Is makes errors.Is(err, ErrPrecondition) true.
func (e *PreconditionError) Is(target error) bool { return target == ErrPrecondition }

var (
	// ErrReplicationUnavailable is returned for a write to a collection whose policy is
	// sync when this node ships to no replication log: nothing was written.
	ErrReplicationUnavailable = errors.New("db: replication unavailable: the collection's policy is sync and no replication log is configured")
	// ErrNotShipped is matched by a *NotShippedError.
	ErrNotShipped = errors.New("db: committed locally, not yet acknowledged by the replication log")
	// ErrSiblingsUnresolved is returned for a write to a document with keep-both siblings
	// that does not name all of them.
	ErrSiblingsUnresolved = errors.New("db: the document has unresolved siblings")
)

// NotShippedError reports a sync-mode write that IS committed in this datacenter but was
// not acknowledged by the replication log before the deadline; it will still be shipped.
// Result is the committed write.
type NotShippedError struct {
	Result Result
	Err    error
}

func (e *NotShippedError) Error() string {
	return fmt.Sprintf("db: write committed locally at %s (version %d) but not yet acknowledged by the replication log: %v",
		e.Result.Position, e.Result.Version, e.Err)
}

// Is makes errors.Is(err, ErrNotShipped) true.
func (e *NotShippedError) Is(target error) bool { return target == ErrNotShipped }

func (e *NotShippedError) Unwrap() error { return e.Err }
