package query

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
)

// Type ranks: the order of values of different JSON types. Index keys start with the rank.
const (
	rankMissing byte = 0x01
	rankNull    byte = 0x02
	rankBool    byte = 0x03
	rankNumber  byte = 0x04
	rankString  byte = 0x05
	rankList    byte = 0x06
	rankObject  byte = 0x07
)

func rank(v any, ok bool) byte {
	if !ok {
		return rankMissing
	}
	switch v.(type) {
	case nil:
		return rankNull
	case bool:
		return rankBool
	case float64, int64, int, uint64:
		return rankNumber
	case string:
		return rankString
	case []any:
		return rankList
	}
	return rankObject
}

func number(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int64:
		return float64(n)
	case int:
		return float64(n)
	case uint64:
		return float64(n)
	}
	return 0
}

// Compare orders two values (ok false meaning missing): missing < null < booleans <
// numbers < strings < lists < objects; within a type, the natural order (lists and objects
// by their JSON text).
func Compare(a any, aok bool, b any, bok bool) int {
	ra, rb := rank(a, aok), rank(b, bok)
	if ra != rb {
		if ra < rb {
			return -1
		}
		return 1
	}
	switch ra {
	case rankBool:
		x, y := a.(bool), b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case rankNumber:
		x, y := number(a), number(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case rankString:
		return strings.Compare(a.(string), b.(string))
	case rankList, rankObject:
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		return bytes.Compare(x, y)
	}
	return 0
}

// Lookup returns the value at a dotted path inside a decoded JSON document.
func Lookup(doc map[string]any, path []string) (any, bool) {
	var cur any = doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// AppendKey appends the order-preserving, self-delimiting index encoding of a value (ok
// false meaning missing) to b: bytes.Compare on encodings agrees with Compare for scalars.
// Lists and objects all encode to their rank alone: indexes do not order them, and the
// planner never serves a predicate on them.
func AppendKey(b []byte, v any, ok bool) []byte {
	r := rank(v, ok)
	b = append(b, r)
	switch r {
	case rankBool:
		if v.(bool) {
			return append(b, 1)
		}
		return append(b, 0)
	case rankNumber:
		f := number(v)
		if f == 0 {
			f = 0 // -0 sorts with 0
		}
		u := math.Float64bits(f)
		if u&(1<<63) != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(b, u)
	case rankString:
		s := v.(string)
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				b = append(b, 0, 0xff)
			} else {
				b = append(b, s[i])
			}
		}
		return append(b, 0, 1)
	}
	return b
}

// DocKey returns the index key of a document's values for fields (each a path).
func DocKey(doc map[string]any, fields [][]string) []byte {
	var b []byte
	for _, f := range fields {
		v, ok := Lookup(doc, f)
		b = AppendKey(b, v, ok)
	}
	return b
}

// SplitPath splits a dotted field path ("address.city").
func SplitPath(p string) []string { return strings.Split(p, ".") }
