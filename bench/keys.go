package bench

import "strconv"

// YCSB's 64-bit FNV-1a constants (site.ycsb.Utils.fnvhash64).
const (
	fnvOffset64 = 0xCBF29CE484222325
	fnvPrime64  = 1099511628211
)

// fnvHash64 is YCSB's Utils.fnvhash64: FNV-1a over the eight little-endian bytes of v,
// made non-negative like Java's Math.abs (Long.MIN_VALUE, which Math.abs leaves negative,
// maps to 0 here).
func fnvHash64(v int64) int64 {
	h := uint64(fnvOffset64)
	u := uint64(v)
	for range 8 {
		h ^= u & 0xff
		u >>= 8
		h *= fnvPrime64
	}
	s := int64(h)
	if s < 0 {
		s = -s
	}
	if s < 0 {
		return 0
	}
	return s
}

// KeyName is the document id of key number n, like YCSB's CoreWorkload.buildKeyName with
// insertorder=hashed and zeropadding=1: "user" followed by the decimal FNV hash of n.
func KeyName(n int64) string {
	return "user" + strconv.FormatInt(fnvHash64(n), 10)
}
