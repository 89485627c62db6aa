package log_test

import (
	"fmt"
	"testing"

	"github.com/aerolithsdb/aerolith/log"
)

func TestShardOfInRangeAndStable(t *testing.T) {
	for _, shards := range []int{1, 2, 3, 7, 16, 64, 1000} {
		counts := make([]int, shards+1)
		for i := range 5000 {
			coll, id := fmt.Sprintf("c%d", i%7), fmt.Sprintf("doc-%d", i)
			s := log.ShardOf(coll, id, shards)
			if s < 1 || s > uint64(shards) {
				t.Fatalf("ShardOf(%q, %q, %d) = %d, out of [1, %d]", coll, id, shards, s, shards)
			}
			if again := log.ShardOf(coll, id, shards); again != s {
				t.Fatalf("ShardOf not stable: %d then %d", s, again)
			}
			counts[s]++
		}
		if shards <= 16 {
			for s := 1; s <= shards; s++ {
				if want := 5000 / shards; counts[s] < want/2 {
					t.Errorf("%d shards: shard %d got %d of 5000 keys, want about %d", shards, s, counts[s], want)
				}
			}
		}
	}
}

// TestShardOfGolden pins the routing function: a change here moves documents between
// shards and breaks every existing deployment, so it must be deliberate.
func TestShardOfGolden(t *testing.T) {
	tests := []struct {
		coll, id string
		shards   int
		want     uint64
	}{
		{"orders", "a1", 16, 11},
		{"orders", "a2", 16, 8},
		{"users", "alice", 16, 4},
		{"users", "bob", 4, 1},
		{"", "", 16, 16},
		{"orders", "a1", 1, 1},
		{"orders", "a1", 3, 2},
		{"events", "2024-01-01T00:00:00Z", 64, 63},
		{"ünïcode", "ключ", 16, 14},
	}
	for _, tt := range tests {
		if got := log.ShardOf(tt.coll, tt.id, tt.shards); got != tt.want {
			t.Errorf("ShardOf(%q, %q, %d) = %d, want %d", tt.coll, tt.id, tt.shards, got, tt.want)
		}
	}
	// The separator keeps ("ab","c") and ("a","bc") apart.
	if log.ShardOf("ab", "c", 1<<30) == log.ShardOf("a", "bc", 1<<30) {
		t.Error(`("ab","c") and ("a","bc") route alike: the separator is missing`)
	}
}
