package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// compareIgnored are parameters that differ between any two runs without changing what
// was measured.
var compareIgnored = map[string]bool{"seed": true, "collection": true, "commit_time": true, "addrs": true}

// Compare writes a markdown comparison of run b against run a: the shape and parameters
// that differ, then every operation's figures side by side with the ratio b/a.
func Compare(w io.Writer, a, b *Results, nameA, nameB string) error {
	var s strings.Builder
	fmt.Fprintf(&s, "### compare: A = %s, B = %s\n\n", nameA, nameB)
	fmt.Fprintf(&s, "A: %s: %s.\n\nB: %s: %s.\n\n", a.Suite.Name, a.ShapeLine(), b.Suite.Name, b.ShapeLine())
	diffs := append(differences("", a.Shape, b.Shape), differences("", a.Params, b.Params)...)
	if a.Suite.Name != b.Suite.Name {
		diffs = append([]string{fmt.Sprintf("suite: %s vs %s", a.Suite.Name, b.Suite.Name)}, diffs...)
	}
	if len(diffs) > 0 {
		s.WriteString("Shape and parameters that differ (A vs B):\n")
		for _, d := range diffs {
			fmt.Fprintf(&s, "- %s\n", d)
		}
		s.WriteString("\n")
	} else {
		s.WriteString("Same shape and parameters.\n\n")
	}
	s.WriteString("| op | metric | A | B | B/A |\n|---|---|---:|---:|---:|\n")
	row := func(op, metric, va, vb string, ra, rb float64) {
		ratio := "–"
		if ra > 0 && rb >= 0 {
			ratio = fmt.Sprintf("%.2f×", rb/ra)
		}
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s |\n", op, metric, va, vb, ratio)
	}
	row("all", "ops/s", fmtRate(a.Run.OpsPerSec), fmtRate(b.Run.OpsPerSec), a.Run.OpsPerSec, b.Run.OpsPerSec)
	row("all", "errors", fmt.Sprint(a.Run.Errors), fmt.Sprint(b.Run.Errors), float64(a.Run.Errors), float64(b.Run.Errors))
	seen := map[string]bool{}
	var ops []string
	for _, o := range append(append([]OpStats(nil), a.Run.ByOp...), b.Run.ByOp...) {
		if !seen[o.Op] {
			seen[o.Op] = true
			ops = append(ops, o.Op)
		}
	}
	for _, op := range ops {
		oa, ob := a.Op(op), b.Op(op)
		if oa == nil {
			oa = &OpStats{}
		}
		if ob == nil {
			ob = &OpStats{}
		}
		row(op, "ops/s", fmtRate(oa.OpsPerSec), fmtRate(ob.OpsPerSec), oa.OpsPerSec, ob.OpsPerSec)
		if oa.Items != oa.Count || ob.Items != ob.Count {
			row(op, "docs/s", fmtRate(oa.ItemsPerSec), fmtRate(ob.ItemsPerSec), oa.ItemsPerSec, ob.ItemsPerSec)
		}
		row(op, "errors", fmt.Sprint(oa.Errors), fmt.Sprint(ob.Errors), float64(oa.Errors), float64(ob.Errors))
		for _, m := range []struct {
			name   string
			va, vb int64
		}{
			{"p50 ms", oa.Latency.P50Us, ob.Latency.P50Us},
			{"p90 ms", oa.Latency.P90Us, ob.Latency.P90Us},
			{"p99 ms", oa.Latency.P99Us, ob.Latency.P99Us},
			{"p99.9 ms", oa.Latency.P999Us, ob.Latency.P999Us},
			{"max ms", oa.Latency.MaxUs, ob.Latency.MaxUs},
		} {
			row(op, m.name, ms(m.va), ms(m.vb), float64(m.va), float64(m.vb))
		}
	}
	s.WriteString("\nFor ops/s a ratio above 1 means B is faster; for latencies a ratio below 1 means B is faster.\n")
	if a.Verify.Mismatches > 0 || b.Verify.Mismatches > 0 {
		fmt.Fprintf(&s, "\nVERIFY: mismatches A %d, B %d: figures from a run that read wrong data are not comparable.\n", a.Verify.Mismatches, b.Verify.Mismatches)
	}
	_, err := io.WriteString(w, s.String())
	return err
}

// differences lists the top-level JSON fields of a and b that differ.
func differences(prefix string, a, b any) []string {
	ma, mb := jsonMap(a), jsonMap(b)
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		if compareIgnored[k] {
			continue
		}
		va, vb := ma[k], mb[k]
		if va != vb {
			out = append(out, fmt.Sprintf("%s%s: %s vs %s", prefix, k, orNone(va), orNone(vb)))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func jsonMap(v any) map[string]string {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	out := make(map[string]string, len(m))
	for k, raw := range m {
		out[k] = string(raw)
	}
	return out
}
