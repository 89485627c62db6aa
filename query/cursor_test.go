package query

import (
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{ID: "a"},
		{Values: []any{1.5}, Present: []bool{true}, ID: "o-1"},
		{Values: []any{nil}, Present: []bool{false}, ID: "x"},
		{Values: []any{nil, true, "s\x00t", -1e300}, Present: []bool{true, true, true, true}, ID: "é/ü"},
		{Values: []any{[]any{1.0, "x"}, map[string]any{"k": []any{}}}, Present: []bool{true, true}, ID: "z"},
		{Values: []any{math.Copysign(0, -1), math.SmallestNonzeroFloat64}, Present: []bool{true, true}, ID: "0"},
	} {
		s := c.Encode()
		got, err := DecodeCursor(s, len(c.Values))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		want := c
		if len(want.Values) == 0 {
			want.Values, want.Present = nil, nil
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("round trip of %#v: %#v", c, *got)
		}
		if got.Encode() != s {
			t.Errorf("%+v encodes as %s, then %s", c, s, got.Encode())
		}
		for i, v := range c.Values {
			if f, ok := v.(float64); ok && math.Signbit(f) != math.Signbit(got.Values[i].(float64)) {
				t.Errorf("sign of %v lost: %v", f, got.Values[i])
			}
		}
	}
}

func TestDecodeCursorRejectsGarbage(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := Cursor{Values: []any{1.0}, Present: []bool{true}, ID: "a"}.Encode()
	for _, c := range []struct {
		s     string
		nSort int
	}{
		{"", 0},
		{"!!!", 0},
		{"eyJ2IjoxLCJpZCI6ImEifQ==", 0}, // padded standard base64
		{valid + "x", 1},
		{valid[:len(valid)-2], 1},
		{b64(`not json`), 0},
		{b64(`[]`), 0},
		{b64(`null`), 0},
		{b64(`{"v":2,"id":"a"}`), 0},
		{b64(`{"id":"a"}`), 0},
		{b64(`{"v":1,"s":[1],"p":[true],"id":"a"}`), 0},
		{b64(`{"v":1,"s":[1],"p":[true,false],"id":"a"}`), 1},
		{b64(`{"v":1,"s":[1,2],"p":[true],"id":"a"}`), 1},
		{b64(`{"v":1,"s":"x","p":[true],"id":"a"}`), 1},
		{b64(`{"v":1,"id":7}`), 0},
		{valid, 0},
		{valid, 2},
	} {
		if got, err := DecodeCursor(c.s, c.nSort); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeCursor(%q, %d) = %+v, %v; want ErrInvalid", c.s, c.nSort, got, err)
		}
	}
}
