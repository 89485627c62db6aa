package query

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Cursor is the keyset position after which the next page starts: the sort values and id
// of the last document returned. Clients see it as an opaque string.
type Cursor struct {
	Values  []any
	Present []bool // false where the document had no value (missing)
	ID      string
}

type cursorWire struct {
	V  int    `json:"v"`
	S  []any  `json:"s,omitempty"`
	P  []bool `json:"p,omitempty"`
	ID string `json:"id"`
}

// Encode returns the opaque form of c.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(cursorWire{V: 1, S: c.Values, P: c.Present, ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses an opaque cursor for a query with nSort sort fields.
func DecodeCursor(s string, nSort int) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: cursor is not valid", ErrInvalid)
	}
	var w cursorWire
	if err := json.Unmarshal(b, &w); err != nil || w.V != 1 {
		return nil, fmt.Errorf("%w: cursor is not valid", ErrInvalid)
	}
	if len(w.S) != nSort || len(w.P) != nSort {
		return nil, fmt.Errorf("%w: cursor belongs to a query with another sort", ErrInvalid)
	}
	return &Cursor{Values: w.S, Present: w.P, ID: w.ID}, nil
}
