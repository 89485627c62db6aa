package bench

import (
	"encoding/json"
	"errors"
	"testing"
)

func decodeDoc(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

func verifyKind(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return ""
}

func TestRecordsRoundTrip(t *testing.T) {
	r := Records{FieldCount: 10, FieldLength: 100}
	doc := decodeDoc(t, r.AppendDoc(nil, "user42", 12345))
	if len(doc) != 10 || len(doc["field3"]) != 100 {
		t.Fatalf("doc %v", doc)
	}
	if err := r.Verify("user42", doc); err != nil {
		t.Fatal(err)
	}
	if r.PayloadBytes() != 1000 || r.DocBytes() != len(r.AppendDoc(nil, "x", 0)) {
		t.Fatalf("sizes %d %d", r.PayloadBytes(), r.DocBytes())
	}
	// A patch of one field at another generation still verifies field by field.
	patch := decodeDoc(t, r.AppendField(nil, "user42", 3, ^uint64(0)))
	doc["field3"] = patch["field3"]
	if err := r.Verify("user42", doc); err != nil {
		t.Fatalf("patched doc: %v", err)
	}
}

func TestRecordsDetectMismatches(t *testing.T) {
	r := Records{FieldCount: 3, FieldLength: 20}
	good := func() map[string]string { return decodeDoc(t, r.AppendDoc(nil, "user1", 99)) }
	cases := map[string]struct {
		mutate func(map[string]string)
		id     string
		kind   string
	}{
		"flipped byte":   {func(d map[string]string) { b := []byte(d["field1"]); b[15] ^= 1; d["field1"] = string(b) }, "user1", VerifyValueMismatch},
		"other document": {func(map[string]string) {}, "user2", VerifyValueMismatch},
		"fields swapped": {func(d map[string]string) { d["field0"], d["field1"] = d["field1"], d["field0"] }, "user1", VerifyValueMismatch},
		"tag changed":    {func(d map[string]string) { b := []byte(d["field2"]); b[12] = 'z'; d["field2"] = string(b) }, "user1", VerifyValueMismatch},
		"truncated":      {func(d map[string]string) { d["field0"] = d["field0"][:19] }, "user1", VerifyValueMismatch},
		"missing field":  {func(d map[string]string) { delete(d, "field2") }, "user1", VerifyMissingField},
		"renamed field":  {func(d map[string]string) { d["field9"] = d["field2"]; delete(d, "field2") }, "user1", VerifyMissingField},
		"extra field":    {func(d map[string]string) { d["x"] = "y" }, "user1", VerifyMissingField},
	}
	for name, c := range cases {
		d := good()
		c.mutate(d)
		if k := verifyKind(r.Verify(c.id, d)); k != c.kind {
			t.Errorf("%s: kind %q, want %q", name, k, c.kind)
		}
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker()
	if tr.Version(5) != 0 || tr.KeyLimit() != 0 {
		t.Fatal("empty tracker")
	}
	tr.Acked(5, 3)
	tr.Acked(5, 2) // an older acknowledgement arriving late does not lower it
	tr.Acked(trackerChunk*2+1, 1)
	if tr.Version(5) != 3 || tr.Version(trackerChunk*2+1) != 1 || tr.KeyLimit() != trackerChunk*2+2 {
		t.Fatalf("versions %d %d limit %d", tr.Version(5), tr.Version(trackerChunk*2+1), tr.KeyLimit())
	}
	if tr.Version(trackerChunk*10) != 0 {
		t.Fatal("unknown key has a version")
	}
}
