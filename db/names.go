package db

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Name rules (documented in docs/api.md).
const (
	MaxCollectionLen     = 64
	MaxIDLen             = 256
	MaxIdempotencyKeyLen = 128
)

// ValidCollection reports whether s is a valid collection name: 1–64 bytes, the first of
// [A-Za-z0-9], the rest of [A-Za-z0-9_.-].
func ValidCollection(s string) bool {
	if len(s) == 0 || len(s) > MaxCollectionLen || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// ValidID reports whether s is a valid document id: 1–256 bytes of [A-Za-z0-9_.:@-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != ':' && c != '@' && c != '-' {
			return false
		}
	}
	return true
}

// ValidIdempotencyKey reports whether s is 1–128 bytes of printable ASCII.
func ValidIdempotencyKey(s string) bool {
	if len(s) == 0 || len(s) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character, time-ordered Crockford base32 id: 48 bits of Unix
// milliseconds then 80 random bits.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("db: random: %v", err)) // crypto/rand does not fail on Linux
	}
	return base32(binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]))
}

// base32 renders 128 bits as 26 Crockford base32 characters.
func base32(hi, lo uint64) string {
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// IDFromKey returns the id a create with idempotency key k generates: derived from the
// key, so a retried create names the same document.
func IDFromKey(principal, k string) string {
	sum := sha256.Sum256([]byte(principal + "/" + k))
	return base32(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16]))
}
