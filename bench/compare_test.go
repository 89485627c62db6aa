package bench

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func fixtureResults(opsPerSec float64, p99 int64, cores int) *Results {
	return &Results{
		Schema: SchemaVersion,
		Suite:  SuiteInfo{Name: "ycsb-c", Summary: "read only", Distribution: DistZipfian},
		Shape:  Shape{Cores: cores, CPUModel: "cpu", GoVersion: "go1", Version: "unknown", Commit: "unknown", Target: "remote", NodeCount: 1, Protocol: "rest", Clients: 8, Fsync: true, PayloadBytes: 1000, FieldCount: 10, FieldLength: 100},
		Params: Params{Suite: "ycsb-c", Seed: uint64(cores), Collection: "c" + string(rune('a'+cores))}.withDefaults(),
		Run: PhaseStats{Seconds: 10, Ops: int64(opsPerSec * 10), OpsPerSec: opsPerSec, StoppedBy: "duration", ByOp: []OpStats{{
			Op: "read", Count: int64(opsPerSec * 10), Items: int64(opsPerSec * 10), OpsPerSec: opsPerSec, ItemsPerSec: opsPerSec,
			Latency: Latency{P50Us: p99 / 4, P90Us: p99 / 2, P99Us: p99, P999Us: p99 * 2, MaxUs: p99 * 3},
		}}},
	}
}

func TestCompareRatios(t *testing.T) {
	a := fixtureResults(1000, 4000, 2)
	b := fixtureResults(2000, 2000, 4)
	var out bytes.Buffer
	if err := Compare(&out, a, b, "a.json", "b.json"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| all | ops/s | 1000 | 2000 | 2.00× |",
		"| read | p99 ms | 4.000 | 2.000 | 0.50× |",
		"cores: 2 vs 4",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("compare output lacks %q:\n%s", want, s)
		}
	}
	// Parameters that differ between any two runs are not reported as differences.
	if strings.Contains(s, "seed:") || strings.Contains(s, "collection:") {
		t.Errorf("seed or collection reported as a difference:\n%s", s)
	}
}

func TestCompareReadsFiles(t *testing.T) {
	dir := t.TempDir()
	a := fixtureResults(1000, 4000, 2)
	if err := a.WriteJSON(filepath.Join(dir, "a.json")); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResults(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Compare(&out, back, back, "a", "a"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Same shape and parameters.") || !strings.Contains(out.String(), "1.00×") {
		t.Fatalf("self-compare:\n%s", out.String())
	}
	a.Schema = 99
	_ = a.WriteJSON(filepath.Join(dir, "bad.json"))
	if _, err := ReadResults(filepath.Join(dir, "bad.json")); err == nil {
		t.Fatal("unknown schema accepted")
	}
}

func TestMarkdownTable(t *testing.T) {
	r := fixtureResults(1000, 4000, 2)
	r.Warnings = []string{"something to know"}
	var out bytes.Buffer
	if err := r.WriteMarkdown(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"### ycsb-c",
		"| op | count | errors | ops/s | docs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |",
		"| read | 10000 | 0 | 1000 | 1000 | 1.000 | 2.000 | 4.000 | 8.000 | 12.0 |",
		"fsync on", "payload 1000 B", "2 cores",
		"- something to know",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	var html bytes.Buffer
	if err := r.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, html.String())
}
