package bench

import (
	"bytes"
	"fmt"
	"strconv"
)

// Records builds the documents the suites write and checks the ones they read back.
//
// A document is {"field0": v0, ..., "fieldN-1": vN-1} like a YCSB record. Every value is
// exactly FieldLength bytes and verifies itself: it starts with a 13-character base-36 tag
// (a generation number drawn per write) and a '.', and the rest is a pseudo-random string
// derived from (document id, field number, tag). A reader recomputes it, so a value
// returned for the wrong document, the wrong field, torn, truncated or otherwise altered is
// detected without the reader having to know which write it sees. Values use only
// [A-Za-z0-9_-], so they need no JSON escaping.
//
// Records is immutable and safe for concurrent use.
type Records struct {
	FieldCount  int
	FieldLength int
}

// tagLen is the width of the generation tag: 13 base-36 digits hold any uint64.
const tagLen = 13

// minFieldLength leaves room for the tag, its separator and two payload bytes.
const minFieldLength = tagLen + 3

const valueAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// appendValue appends the value of field f of document id at generation gen.
func (r Records) appendValue(buf []byte, id string, f int, gen uint64) []byte {
	var tag [tagLen]byte
	t := strconv.AppendUint(tag[:0], gen, 36)
	for range tagLen - len(t) {
		buf = append(buf, '0')
	}
	buf = append(buf, t...)
	buf = append(buf, '.')
	state := splitmix(hashString(id) ^ splitmix(uint64(f)+1) ^ splitmix(gen))
	n := r.FieldLength - tagLen - 1
	for n > 0 {
		state = splitmix(state)
		x := state
		for k := 0; k < 10 && n > 0; k++ {
			buf = append(buf, valueAlphabet[x&63])
			x >>= 6
			n--
		}
	}
	return buf
}

func appendFieldName(buf []byte, f int) []byte {
	buf = append(buf, `"field`...)
	buf = strconv.AppendInt(buf, int64(f), 10)
	return append(buf, '"')
}

// AppendDoc appends the full document for id at generation gen.
func (r Records) AppendDoc(buf []byte, id string, gen uint64) []byte {
	buf = append(buf, '{')
	for f := range r.FieldCount {
		if f > 0 {
			buf = append(buf, ',')
		}
		buf = appendFieldName(buf, f)
		buf = append(buf, ':', '"')
		buf = r.appendValue(buf, id, f, gen)
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

// AppendField appends a one-field document (a merge patch) setting field f.
func (r Records) AppendField(buf []byte, id string, f int, gen uint64) []byte {
	buf = append(buf, '{')
	buf = appendFieldName(buf, f)
	buf = append(buf, ':', '"')
	buf = r.appendValue(buf, id, f, gen)
	return append(buf, '"', '}')
}

// PayloadBytes is the number of value bytes in a full document.
func (r Records) PayloadBytes() int { return r.FieldCount * r.FieldLength }

// DocBytes is the size of a full document's JSON body.
func (r Records) DocBytes() int { return len(r.AppendDoc(nil, "x", 0)) }

// Verify checks a document read back for id: every field present, nothing extra, every
// value intact. It returns a *VerifyError on a mismatch.
func (r Records) Verify(id string, doc map[string]string) error {
	if len(doc) != r.FieldCount {
		return &VerifyError{Kind: VerifyMissingField, ID: id, Detail: fmt.Sprintf("%d fields, want %d", len(doc), r.FieldCount)}
	}
	var name, want []byte
	for f := range r.FieldCount {
		name = strconv.AppendInt(append(name[:0], "field"...), int64(f), 10)
		v, ok := doc[string(name)]
		if !ok {
			return &VerifyError{Kind: VerifyMissingField, ID: id, Detail: string(name) + " missing"}
		}
		if len(v) != r.FieldLength || v[tagLen] != '.' {
			return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: string(name) + ": malformed value"}
		}
		gen, err := strconv.ParseUint(trimZeros(v[:tagLen]), 36, 64)
		if err != nil {
			return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: string(name) + ": bad tag"}
		}
		want = r.appendValue(want[:0], id, f, gen)
		if !bytes.Equal(want, []byte(v)) {
			return &VerifyError{Kind: VerifyValueMismatch, ID: id, Detail: string(name) + ": value does not match its tag"}
		}
	}
	return nil
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
