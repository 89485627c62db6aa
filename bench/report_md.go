package bench

import (
	"fmt"
	"io"
	"strings"
)

// fmtUs formats microseconds for people: "850µs", "1.23ms", "2.5s".
func fmtUs(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1000)
	default:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	}
}

// ms formats microseconds as milliseconds for a table cell.
func ms(us int64) string {
	if us == 0 {
		return "–"
	}
	if us < 10_000 {
		return fmt.Sprintf("%.3f", float64(us)/1000)
	}
	return fmt.Sprintf("%.1f", float64(us)/1000)
}

// ShapeLine says in one line what a result was measured on.
func (r *Results) ShapeLine() string {
	s := r.Shape
	var b strings.Builder
	fmt.Fprintf(&b, "%d cores (%s), %s, aerolith %s", s.Cores, s.CPUModel, s.GoVersion, s.Version)
	if s.Commit != "unknown" {
		c := s.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		fmt.Fprintf(&b, " @%s", c)
		if s.Modified {
			b.WriteString("+dirty")
		}
	}
	fmt.Fprintf(&b, "; %s, %d node(s)", s.Target, s.NodeCount)
	if s.Shards > 0 {
		fmt.Fprintf(&b, " with %d shards", s.Shards)
	}
	fmt.Fprintf(&b, ", %s, %d clients", s.Protocol, s.Clients)
	if s.Subscribers > 0 {
		fmt.Fprintf(&b, ", %d subscribers", s.Subscribers)
	}
	if r.Params.Rate > 0 {
		fmt.Fprintf(&b, ", open loop at %.0f ops/s", r.Params.Rate)
	} else {
		b.WriteString(", closed loop")
	}
	b.WriteString("; fsync on")
	if d := s.DiskFsync; d != nil {
		fmt.Fprintf(&b, " (disk fsync p50 %s, p99 %s)", fmtUs(d.P50Us), fmtUs(d.P99Us))
	}
	fmt.Fprintf(&b, "; payload %d B (%d×%d), document %d B", s.PayloadBytes, s.FieldCount, s.FieldLength, s.DocBytes)
	if s.BatchSize > 0 {
		fmt.Fprintf(&b, ", batches of %d", s.BatchSize)
	}
	fmt.Fprintf(&b, "; %d records, %s keys; %gs measured", r.Params.RecordCount, r.Suite.Distribution, r.Run.Seconds)
	if r.Params.Warmup > 0 {
		fmt.Fprintf(&b, " after %s warmup", r.Params.Warmup)
	}
	fmt.Fprintf(&b, "; seed %d", r.Params.Seed)
	return b.String()
}

// WriteMarkdown writes the results as a markdown section: shape, a table per operation,
// load, verification and warnings.
func (r *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s: %s\n\n", r.Suite.Name, r.Suite.Summary)
	fmt.Fprintf(&b, "Shape: %s.\n\n", r.ShapeLine())
	writeOpTable(&b, r.Run, r.Verify.PostRun)
	fmt.Fprintf(&b, "\nThroughput: %s ops/s over %gs (%d ops, %d failed; stopped by %s).", fmtRate(r.Run.OpsPerSec), r.Run.Seconds, r.Run.Ops, r.Run.Errors, r.Run.StoppedBy)
	if rs := r.Run.Rate; rs != nil {
		held := "held"
		if !rs.Held {
			held = "NOT held"
		}
		fmt.Fprintf(&b, " Target rate %.0f ops/s %s (achieved %.0f; schedule lag p99 %s).", rs.Target, held, rs.Achieved, fmtUs(rs.LagP99Us))
	}
	b.WriteString("\n")
	if l := r.Load; l != nil {
		docs := int64(0)
		for _, o := range l.ByOp {
			docs += o.Items
		}
		fmt.Fprintf(&b, "Load: %d records in %gs (%s docs/s), %d failed requests.\n", docs, l.Seconds, fmtRate(float64(docs)/max(l.Seconds, 1e-9)), l.Errors)
	}
	if st := r.Run.Streams; st != nil {
		writeStreams(&b, st)
	}
	v := r.Verify
	fmt.Fprintf(&b, "Verification: %d reads checked during the run and %d after it; %d mismatches.\n", v.CheckedInRun, v.CheckedPostRun, v.Mismatches)
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, x := range r.Warnings {
			fmt.Fprintf(&b, "- %s\n", x)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtRate(f float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.0f", f), ".0")
}

func writeOpTable(b *strings.Builder, ps PhaseStats, post *OpStats) {
	b.WriteString("| op | count | errors | ops/s | docs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(o OpStats, label string) {
		errs := fmt.Sprint(o.Errors)
		if o.Errors > 0 {
			var parts []string
			for _, c := range sortedKeys(o.ErrorsByCode) {
				parts = append(parts, fmt.Sprintf("%s:%d", c, o.ErrorsByCode[c]))
			}
			errs += " (" + strings.Join(parts, " ") + ")"
		}
		l := o.Latency
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, o.Count, errs, fmtRate(o.OpsPerSec), fmtRate(o.ItemsPerSec),
			ms(l.P50Us), ms(l.P90Us), ms(l.P99Us), ms(l.P999Us), ms(l.MaxUs))
	}
	for _, o := range ps.ByOp {
		label := o.Op
		if o.Emulated != "" {
			label += " (emulated)"
		}
		row(o, label)
	}
	if post != nil {
		row(*post, "verify (after run)")
	}
}

// writeStreams writes what the subscribers received.
func writeStreams(b *strings.Builder, st *StreamStats) {
	settled := "every subscriber had every acknowledged write"
	if !st.Settled {
		settled = "NOT every subscriber had every acknowledged write"
	}
	fmt.Fprintf(b, "Streams: %d subscribers, %d writes acknowledged (%d failed); %s after %gs of waiting at the end.\n\n",
		st.Subscribers, st.WritesAcked, st.WritesFailed, settled, st.SettleSeconds)
	b.WriteString("| subscriber | expected | delivered | missing | duplicates | unexpected | unacked | before ack | resumes |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, s := range st.BySubscriber {
		fmt.Fprintf(b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", i, s.Expected, s.Delivered, s.Missing, s.Duplicates, s.Unexpected, s.Unacked, s.BeforeAck, s.Resumes)
	}
	b.WriteString("\n")
}
