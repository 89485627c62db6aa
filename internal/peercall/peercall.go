package peercall

import "errors"

// Error is an error a serving node answered a call with: its kind, a stable name of the
// typed error it stands for ("not_hosted", "unavailable", "not_found", ...), and its
// message.
type Error struct {
	Kind string
	Msg  string
}

func (e *Error) Error() string { return e.Kind + ": " + e.Msg }

// ErrUnreachable marks a call that never reached its node: no connection carried it (a
// refused or timed-out dial, a name that does not resolve behind a partition, a deadline
// that passed first), so the node cannot have served it.
var ErrUnreachable = errors.New("node unreachable")
