package query

import (
	"errors"
	"fmt"
)

var (
	// ErrTooExpensive is returned when a filter's estimated worst-case cost, or its actual
	// cost on some document, exceeds the limit.
	ErrTooExpensive = errors.New("query: filter too expensive")
	// ErrInvalid is returned for a malformed query (sort, fields, limit, cursor).
	ErrInvalid = errors.New("query: invalid query")
	// ErrCompile is the sentinel every *CompileError matches.
	ErrCompile = errors.New("query: filter does not compile")
)

// CompileError reports a filter that does not parse or type-check, with the position of
// the first problem (1-based line and column; 0 when unknown).
type CompileError struct {
	Message string
	Line    int
	Column  int
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("query: filter: line %d, column %d: %s", e.Line, e.Column, e.Message)
	}
	return "query: filter: " + e.Message
}

// Is makes errors.Is(err, ErrCompile) true.
func (e *CompileError) Is(target error) bool { return target == ErrCompile }
