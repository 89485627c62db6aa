package gateway

import (
	"errors"
	"fmt"
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxBodyBytes int // default 1 MiB
	MaxJSONDepth int // default 64
}

// DefaultLimits returns the defaults.
func DefaultLimits() Limits { return Limits{MaxBodyBytes: 1 << 20, MaxJSONDepth: 64} }

// Validate reports every problem with l.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxBodyBytes < 0 || l.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("max body bytes must be in 0..64MiB, got %d", l.MaxBodyBytes))
	}
	if l.MaxJSONDepth < 0 || l.MaxJSONDepth > 1000 {
		errs = append(errs, fmt.Errorf("max JSON depth must be in 0..1000, got %d", l.MaxJSONDepth))
	}
	return errors.Join(errs...)
}

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxJSONDepth == 0 {
		l.MaxJSONDepth = d.MaxJSONDepth
	}
	return l
}

// JSONDepth returns the deepest nesting of objects and arrays in b, scanning it once
// without decoding. It assumes nothing about validity; strings are skipped with their
// escapes.
func JSONDepth(b []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// Principal is who makes a request. Until authentication is configured everyone is
// Anonymous; the gateways ask Authenticate and nothing else.
const Anonymous = "anonymous"

// Authenticate establishes the principal of a request from its credentials. It is the one
// place that does; with no authentication configured it returns Anonymous.
func Authenticate(authorization string) (string, error) { return Anonymous, nil }
