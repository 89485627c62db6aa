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
