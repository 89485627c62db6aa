package materializer

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MergePatch applies an RFC 7396 JSON merge patch to a JSON object and returns the
// resulting object, encoded with object keys sorted (so every replica produces the same
// bytes). Numbers keep their textual form. It returns ErrNotObject when target or the
// result is not an object, and a decoding error for invalid JSON.
func MergePatch(target, patch []byte) ([]byte, error) {
	t, err := decodeJSON(target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if _, ok := t.(map[string]any); !ok {
		return nil, ErrNotObject
	}
	p, err := decodeJSON(patch)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	out, ok := merge(t, p).(map[string]any)
	if !ok {
		return nil, ErrNotObject
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

func merge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = merge(t[k], v)
	}
	return t
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}
