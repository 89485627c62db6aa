package feed

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidToken is returned for a resume token that does not parse or names
	// positions this node's log has not reached.
	ErrInvalidToken = errors.New("feed: invalid resume token")
	// ErrInvalidSpec is returned for a malformed subscription.
	ErrInvalidSpec = errors.New("feed: invalid subscription")
	// ErrTokenTooOld is the sentinel every *TooOldError matches.
	ErrTokenTooOld = errors.New("feed: token too old")
)

// TooOldError reports a start position older than the events this node still serves, with
// the earliest position it can serve in that shard.
type TooOldError struct {
	Shard    uint64
	Earliest uint64
}

func (e *TooOldError) Error() string {
	return fmt.Sprintf("feed: shard %d no longer serves events before index %d", e.Shard, e.Earliest)
}

// Is makes errors.Is(err, ErrTokenTooOld) true.
func (e *TooOldError) Is(target error) bool { return target == ErrTokenTooOld }
