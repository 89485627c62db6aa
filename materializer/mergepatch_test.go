package materializer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aerolithsdb/aerolith/materializer"
)

// TestMergePatchRFC7396 runs the examples of RFC 7396 appendix A. Documents here must be
// objects, so the examples whose target or result is not an object expect ErrNotObject.
func TestMergePatchRFC7396(t *testing.T) {
	tests := []struct {
		target, patch string
		want          string // canonical (sorted keys); "" when wantErr
		wantErr       error
	}{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`, nil},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`, nil},
		{`{"a":"b"}`, `{"a":null}`, `{}`, nil},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`, nil},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`, nil},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`, nil},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`, nil},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`, nil},
		{`["a","b"]`, `["c","d"]`, "", materializer.ErrNotObject},
		{`{"a":"b"}`, `["c"]`, "", materializer.ErrNotObject},
		{`{"a":"foo"}`, `null`, "", materializer.ErrNotObject},
		{`{"a":"foo"}`, `"bar"`, "", materializer.ErrNotObject},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`, nil},
		{`[1,2]`, `{"a":"b","c":null}`, "", materializer.ErrNotObject},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`, nil},
		// Beyond the appendix.
		{`{"b":1,"a":2}`, `{}`, `{"a":2,"b":1}`, nil},                                                       // keys come out sorted
		{`{"n":1.50,"big":12345678901234567890123}`, `{}`, `{"big":12345678901234567890123,"n":1.50}`, nil}, // numbers keep their text
		{`{"h":"<&>"}`, `{"x":"\u00e9"}`, `{"h":"<&>","x":"é"}`, nil},                                       // no HTML escaping
		{`{"a":{"b":1}}`, `{"a":{"b":null}}`, `{"a":{}}`, nil},
		{`{"a":1}`, `{"a":{"b":null,"c":2}}`, `{"a":{"c":2}}`, nil},
		{` {"a":1} `, "\n{\"b\":2}\n", `{"a":1,"b":2}`, nil},
		{`"str"`, `{}`, "", materializer.ErrNotObject},
		{`null`, `{}`, "", materializer.ErrNotObject},
		{`42`, `{}`, "", materializer.ErrNotObject},
		{`{"a":1}`, `42`, "", materializer.ErrNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.target+"+"+tt.patch, func(t *testing.T) {
			got, err := materializer.MergePatch([]byte(tt.target), []byte(tt.patch))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("MergePatch = %s, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("MergePatch = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMergePatchInvalidJSON(t *testing.T) {
	tests := []struct{ target, patch string }{
		{``, `{}`},
		{`{}`, ``},
		{`{"a":`, `{}`},
		{`{}`, `{"a":}`},
		{`{} {}`, `{}`},
		{`{}`, `{} x`},
		{`{'a':1}`, `{}`},
	}
	for _, tt := range tests {
		got, err := materializer.MergePatch([]byte(tt.target), []byte(tt.patch))
		if err == nil {
			t.Errorf("MergePatch(%q, %q) = %s, want an error", tt.target, tt.patch, got)
		}
		if errors.Is(err, materializer.ErrNotObject) {
			t.Errorf("MergePatch(%q, %q): invalid JSON reported as ErrNotObject", tt.target, tt.patch)
		}
	}
}

func TestMergePatchDeterministic(t *testing.T) {
	target := []byte(`{"z":1,"y":{"b":2,"a":1},"x":[3,2,1]}`)
	patch := []byte(`{"w":true,"y":{"c":null,"d":"e"}}`)
	first, err := materializer.MergePatch(target, patch)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 { // map iteration order varies between runs; output must not
		again, err := materializer.MergePatch(target, patch)
		if err != nil || string(again) != string(first) {
			t.Fatalf("MergePatch not deterministic: %s vs %s (%v)", first, again, err)
		}
	}
}

func FuzzMergePatch(f *testing.F) {
	seeds := [][2]string{
		{`{"a":"b"}`, `{"a":"c"}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`},
		{`{"a":[1,2,{"x":null}]}`, `{"a":null,"b":[{}]}`},
		{`{"n":1e400}`, `{"m":-0.0}`},
		{`["a"]`, `{}`},
		{`{"a":"foo"}`, `null`},
		{`{"\u0000":"\ud800"}`, `{"\"":"\\"}`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, target, patch []byte) {
		out, err := materializer.MergePatch(target, patch)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("result is not valid JSON: %s", out)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber() // numbers like 1e400 are valid JSON but overflow float64
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("result does not decode: %v\n%s", err, out)
		}
		if _, ok := v.(map[string]any); !ok {
			t.Fatalf("result is not an object: %s", out)
		}
		// The canonical form is a fixed point: patching it with {} changes nothing.
		again, err := materializer.MergePatch(out, []byte(`{}`))
		if err != nil || string(again) != string(out) {
			t.Fatalf("result is not canonical: %s then %s (%v)", out, again, err)
		}
	})
}
