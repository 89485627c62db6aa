package bench

import "testing"

func TestKeyNameMatchesYCSB(t *testing.T) {
	// Keys as YCSB 0.17 names them for the first record numbers (insertorder=hashed).
	if got := KeyName(0); got != "user6284781860667377211" {
		t.Fatalf("KeyName(0) = %s, want user6284781860667377211", got)
	}
	seen := map[string]bool{}
	for n := int64(0); n < 100000; n++ {
		k := KeyName(n)
		if seen[k] {
			t.Fatalf("duplicate key %s at %d", k, n)
		}
		seen[k] = true
	}
}
