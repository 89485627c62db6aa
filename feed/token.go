package feed

import (
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/aerolithsdb/aerolith/internal/wire"
)

// Token is a subscriber's place in the log: per shard, the index of the last event it has
// passed (0: none). Shards it does not name are at 0.
type Token map[uint64]uint64

const tokenVersion byte = 1

// Encode returns the opaque form of t: version 1, then (shard, index) pairs in shard order.
func (t Token) Encode() string {
	shards := make([]uint64, 0, len(t))
	for s := range t {
		shards = append(shards, s)
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i] < shards[j] })
	b := []byte{tokenVersion}
	b = wire.AppendUvarint(b, uint64(len(shards)))
	for _, s := range shards {
		b = wire.AppendUvarint(b, s)
		b = wire.AppendUvarint(b, t[s])
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken parses an opaque token.
func DecodeToken(s string) (Token, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: not a token", ErrInvalidToken)
	}
	r := wire.NewReader(b)
	if r.Byte() != tokenVersion {
		return nil, fmt.Errorf("%w: unknown token version", ErrInvalidToken)
	}
	n := r.Uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: corrupt token", ErrInvalidToken)
	}
	t := Token{}
	for i := uint64(0); i < n; i++ {
		t[r.Uvarint()] = r.Uvarint()
	}
	if r.Err() != nil || r.Len() != 0 {
		return nil, fmt.Errorf("%w: corrupt token", ErrInvalidToken)
	}
	return t, nil
}

// Clone returns a copy of t.
func (t Token) Clone() Token {
	c := make(Token, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}
