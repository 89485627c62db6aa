package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SchemaVersion is the version of the results.json layout.
const SchemaVersion = 1

// Results is everything one run measured, with the shape it was measured in. It is written
// as results.json and is the input of the report and of compare.
type Results struct {
	Schema     int       `json:"schema"`
	Tool       string    `json:"tool"`
	Suite      SuiteInfo `json:"suite"`
	Shape      Shape     `json:"shape"`
	Params     Params    `json:"params"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Interrupted is set when the run stopped before its end (interrupted from outside, or
	// by its MaxDuration bound); the figures are partial.
	Interrupted bool        `json:"interrupted,omitempty"`
	Load        *PhaseStats `json:"load,omitempty"`
	Run         PhaseStats  `json:"run"`
	Verify      VerifyStats `json:"verify"`
	// Warnings are conditions a reader of the figures must know (rate not held, errors...).
	Warnings []string `json:"warnings,omitempty"`
}

// SuiteInfo describes the suite that ran.
type SuiteInfo struct {
	Name         string `json:"name"`
	Summary      string `json:"summary"`
	Mix          []Mix  `json:"mix,omitempty"`
	Distribution string `json:"distribution,omitempty"`
	// Emulations lists operations that are not what their name says on this server, with
	// how they were done (workload E's scan, until there is a range-scan endpoint).
	Emulations map[string]string `json:"emulations,omitempty"`
	// Notes say how the operations map onto the API.
	Notes map[string]string `json:"notes,omitempty"`
}

// PhaseStats is one phase (load or run).
type PhaseStats struct {
	// Seconds from the phase's start until its last operation finished.
	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"` // workload steps finished (a read-modify-write is one)
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// Rate is set for open-loop runs.
	Rate     *RateStats `json:"rate,omitempty"`
	ByOp     []OpStats  `json:"by_op"`
	Timeline []Second   `json:"timeline,omitempty"`
	// StoppedBy says what ended the phase: "duration", "ops", "done", "interrupted" or
	// "max_duration".
	StoppedBy string `json:"stopped_by"`
	// Streams is set by suites with subscribers (changefeed).
	Streams *StreamStats `json:"streams,omitempty"`
}

// StreamStats is what the subscribers of a change stream received: every acknowledged
// write must reach every subscriber exactly once. Missing, duplicate and unexpected events
// are also counted as errors of the deliver operation (verify_missing_event, ...) and as
// verification mismatches.
type StreamStats struct {
	Subscribers int `json:"subscribers"`
	// Writes acknowledged (all of them, warmup included: a subscriber must see them all),
	// and writes that failed (they may or may not have been applied).
	WritesAcked  int64 `json:"writes_acked"`
	WritesFailed int64 `json:"writes_failed"`
	// Settled says every subscriber had received every acknowledged write before the wait
	// at the end (SettleSeconds, at most the op timeout) ran out.
	Settled       bool              `json:"settled"`
	SettleSeconds float64           `json:"settle_seconds"`
	BySubscriber  []SubscriberStats `json:"by_subscriber"`
	Note          string            `json:"note"`
}

// SubscriberStats is one subscriber.
type SubscriberStats struct {
	Expected   int64 `json:"expected"`   // acknowledged writes
	Delivered  int64 `json:"delivered"`  // distinct acknowledged writes received
	Missing    int64 `json:"missing"`    // acknowledged writes never received
	Duplicates int64 `json:"duplicates"` // writes received more than once (each extra copy)
	Unexpected int64 `json:"unexpected"` // events not written by this run, or undecodable
	// Unacked are events of writes whose call failed (applied although not acknowledged).
	Unacked int64 `json:"unacked"`
	// BeforeAck are events received before their write's acknowledgement reached the
	// writer; their deliver latency is recorded as zero.
	BeforeAck int64 `json:"before_ack"`
	// Resumes are streams that failed and were resumed from the last resume token.
	Resumes int64 `json:"resumes"`
}

// RateStats reports whether an open-loop target rate was held.
type RateStats struct {
	Target   float64 `json:"target_ops_per_sec"`
	Achieved float64 `json:"achieved_ops_per_sec"`
	Held     bool    `json:"held"`
	// Schedule lag: how late steps started against their planned time. Latencies of
	// open-loop runs are measured from the planned time, so they include this wait.
	LagP50Us int64 `json:"lag_p50_us"`
	LagP99Us int64 `json:"lag_p99_us"`
	LagMaxUs int64 `json:"lag_max_us"`
}

// OpStats is one operation type over a phase.
type OpStats struct {
	Op           string           `json:"op"`
	Count        int64            `json:"count"` // successful operations
	Errors       int64            `json:"errors"`
	ErrorsByCode map[string]int64 `json:"errors_by_code,omitempty"`
	OpsPerSec    float64          `json:"ops_per_sec"`
	// Items are documents: 1 per read or write, the batch size for a batch, the documents
	// read by a scan.
	Items            int64            `json:"items"`
	ItemsPerSec      float64          `json:"items_per_sec"`
	ItemErrors       int64            `json:"item_errors,omitempty"`
	ItemErrorsByCode map[string]int64 `json:"item_errors_by_code,omitempty"`
	// Latency of successful operations, in microseconds.
	Latency  Latency         `json:"latency_us"`
	Spectrum []SpectrumPoint `json:"spectrum,omitempty"`
	// HDR is the full latency histogram (HdrHistogram V2 compressed, base64), values in µs.
	HDR string `json:"hdr,omitempty"`
	// Emulated says how the operation was emulated, when it was.
	Emulated string `json:"emulated,omitempty"`
}

// Latency percentiles in microseconds.
type Latency struct {
	MinUs  int64   `json:"min"`
	MeanUs float64 `json:"mean"`
	P50Us  int64   `json:"p50"`
	P90Us  int64   `json:"p90"`
	P99Us  int64   `json:"p99"`
	P999Us int64   `json:"p99_9"`
	MaxUs  int64   `json:"max"`
}

// SpectrumPoint is one point of the latency-by-percentile curve.
type SpectrumPoint struct {
	Percentile float64 `json:"p"`
	Us         int64   `json:"us"`
}

// Second is one point of the timeline: one second of the measured phase (the last point
// may be shorter).
type Second struct {
	T         float64             `json:"t"`       // end of the bucket, seconds since the phase began
	Seconds   float64             `json:"seconds"` // bucket length
	Ops       int64               `json:"ops"`
	OpsPerSec float64             `json:"ops_per_sec"`
	Errors    int64               `json:"errors"`
	P50Us     int64               `json:"p50_us"`
	P99Us     int64               `json:"p99_us"`
	MaxUs     int64               `json:"max_us"`
	ByOp      map[string]OpSecond `json:"by_op,omitempty"`
}

// OpSecond is one operation type in one second.
type OpSecond struct {
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	P99Us  int64 `json:"p99_us"`
}

// VerifyStats counts the reads checked against what was written.
type VerifyStats struct {
	// Checked during the run (a sample of reads, Params.VerifyFraction) and after it
	// (Params.VerifySample keys read back once the load stopped).
	CheckedInRun   int64            `json:"checked_in_run"`
	CheckedPostRun int64            `json:"checked_post_run"`
	Mismatches     int64            `json:"mismatches"`
	ByKind         map[string]int64 `json:"by_kind,omitempty"`
	// PostRun are the post-run reads as an operation (errors other than mismatches too).
	PostRun *OpStats `json:"post_run,omitempty"`
	// Note says what a check covers.
	Note string `json:"note"`
}

// WriteJSON writes r to path, indented.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write results: %w", err)
	}
	return nil
}

// ReadResults reads a results.json file.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: read results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: decode results %s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("%w: %s has schema %d, this version reads %d", ErrResultsSchema, path, r.Schema, SchemaVersion)
	}
	return &r, nil
}

// Op returns the stats of the named operation in the run phase, or nil.
func (r *Results) Op(name string) *OpStats {
	for i := range r.Run.ByOp {
		if r.Run.ByOp[i].Op == name {
			return &r.Run.ByOp[i]
		}
	}
	return nil
}

// WriteDir writes results.json and report.html into dir, creating it.
func (r *Results) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: out dir: %w", err)
	}
	if err := r.WriteJSON(filepath.Join(dir, "results.json")); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	if err := r.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	return nil
}
