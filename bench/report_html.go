package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained report page: no scripts, styles or images from
// anywhere else; the charts are inline SVG drawn from the results.
func (r *Results) WriteHTML(w io.Writer) error {
	var md strings.Builder
	_ = r.WriteMarkdown(&md)
	params, _ := json.MarshalIndent(r.Params, "", "  ")
	shape, _ := json.MarshalIndent(r.Shape, "", "  ")
	suite, _ := json.MarshalIndent(r.Suite, "", "  ")
	data := struct {
		R                      *Results
		ShapeLine              string
		Charts                 []template.HTML
		Rows                   []htmlRow
		Params, Shape, SuiteJS string
	}{R: r, ShapeLine: r.ShapeLine(), Params: string(params), Shape: string(shape), SuiteJS: string(suite)}
	for _, c := range r.charts() {
		data.Charts = append(data.Charts, template.HTML(c)) // built by lineChart, which escapes all text
	}
	for _, o := range r.Run.ByOp {
		data.Rows = append(data.Rows, rowOf(o, o.Op))
	}
	if p := r.Verify.PostRun; p != nil {
		data.Rows = append(data.Rows, rowOf(*p, "verify (after run)"))
	}
	var buf bytes.Buffer
	if err := reportTmpl.Execute(&buf, data); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type htmlRow struct {
	Op, Errors, Emulated     string
	Count                    int64
	OpsPerSec, DocsPerSec    string
	P50, P90, P99, P999, Max string
}

func rowOf(o OpStats, label string) htmlRow {
	errs := fmt.Sprint(o.Errors)
	for _, c := range sortedKeys(o.ErrorsByCode) {
		errs += fmt.Sprintf(" %s:%d", c, o.ErrorsByCode[c])
	}
	for _, c := range sortedKeys(o.ItemErrorsByCode) {
		errs += fmt.Sprintf(" item %s:%d", c, o.ItemErrorsByCode[c])
	}
	l := o.Latency
	return htmlRow{Op: label, Errors: errs, Emulated: o.Emulated, Count: o.Count, OpsPerSec: fmtRate(o.OpsPerSec), DocsPerSec: fmtRate(o.ItemsPerSec),
		P50: ms(l.P50Us), P90: ms(l.P90Us), P99: ms(l.P99Us), P999: ms(l.P999Us), Max: ms(l.MaxUs)}
}

// charts draws throughput and p99 over time and latency by percentile.
func (r *Results) charts() []string {
	tl := r.Run.Timeline
	var thr, p99 []series
	all := series{name: "all ops"}
	allP99 := series{name: "all ops"}
	for _, s := range tl {
		all.xs = append(all.xs, s.T)
		all.ys = append(all.ys, s.OpsPerSec)
		if s.Ops > 0 || s.P99Us > 0 {
			allP99.xs = append(allP99.xs, s.T)
			allP99.ys = append(allP99.ys, float64(s.P99Us)/1000)
		}
	}
	thr = append(thr, all)
	p99 = append(p99, allP99)
	for _, o := range r.Run.ByOp {
		t := series{name: o.Op}
		l := series{name: o.Op}
		for _, s := range tl {
			sec := s.ByOp[o.Op]
			t.xs = append(t.xs, s.T)
			t.ys = append(t.ys, float64(sec.Count)/math.Max(s.Seconds, 1e-3))
			if sec.Count > 0 {
				l.xs = append(l.xs, s.T)
				l.ys = append(l.ys, float64(sec.P99Us)/1000)
			}
		}
		if len(r.Run.ByOp) > 1 {
			thr = append(thr, t)
		}
		p99 = append(p99, l)
	}
	// Latency by percentile, x on a "nines" scale: 0 = p0, 1 = p90, 2 = p99, ...
	var spec []series
	for _, o := range r.Run.ByOp {
		s := series{name: o.Op}
		for _, pt := range o.Spectrum {
			if pt.Percentile >= 100 {
				continue
			}
			s.xs = append(s.xs, -math.Log10(1-pt.Percentile/100))
			s.ys = append(s.ys, float64(pt.Us)/1000)
		}
		spec = append(spec, s)
	}
	nines := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	return []string{
		lineChart("Throughput over time (1-second buckets)", "seconds since the measured phase began", "ops/s", thr, nil),
		lineChart("p99 latency over time (1-second buckets)", "seconds since the measured phase began", "ms", p99, nil),
		lineChart("Latency by percentile (whole run)", "percentile", "ms", spec, nines),
	}
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>aerolith bench: {{.R.Suite.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
.warn{background:#fff4e0;border-left:4px solid #f0a000;padding:8px 12px}
.bad{background:#ffe8e8;border-left:4px solid #d00000;padding:8px 12px}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
.shape{color:#444}
</style></head><body>
<h1>aerolith bench: {{.R.Suite.Name}}</h1>
<p>{{.R.Suite.Summary}}</p>
<p class="shape"><b>Shape:</b> {{.ShapeLine}}.</p>
<p>Started {{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}}, measured {{.R.Run.Seconds}} s, stopped by {{.R.Run.StoppedBy}}.
Throughput <b>{{printf "%.0f" .R.Run.OpsPerSec}} ops/s</b> ({{.R.Run.Ops}} ops, {{.R.Run.Errors}} failed).
{{with .R.Run.Rate}}Open loop at {{printf "%.0f" .Target}} ops/s: achieved {{printf "%.0f" .Achieved}}, {{if .Held}}held{{else}}<b>NOT held</b>{{end}}.{{end}}</p>
{{if .R.Verify.Mismatches}}<p class="bad"><b>Verification failed:</b> {{.R.Verify.Mismatches}} reads did not match what was written ({{range $k, $v := .R.Verify.ByKind}}{{$k}} {{$v}} {{end}}).</p>{{end}}
{{if .R.Warnings}}<div class="warn"><b>Warnings</b><ul>{{range .R.Warnings}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
<h2>Operations</h2>
<table><tr><th>op</th><th>count</th><th>errors</th><th>ops/s</th><th>docs/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>
{{range .Rows}}<tr><td>{{.Op}}{{if .Emulated}} <i>(emulated)</i>{{end}}</td><td>{{.Count}}</td><td>{{.Errors}}</td><td>{{.OpsPerSec}}</td><td>{{.DocsPerSec}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.P999}}</td><td>{{.Max}}</td></tr>
{{end}}</table>
<p>Latency is of successful operations, from an HDR histogram (3 significant digits){{if .R.Params.Rate}}, measured from each operation's planned start (open loop){{end}}.
Verification: {{.R.Verify.CheckedInRun}} reads checked during the run, {{.R.Verify.CheckedPostRun}} after it, {{.R.Verify.Mismatches}} mismatches. {{.R.Verify.Note}}.</p>
{{with .R.Load}}<p>Load phase: {{.Ops}} requests in {{.Seconds}} s, {{.Errors}} failed.</p>{{end}}
<h2>Charts</h2>
{{range .Charts}}<div>{{.}}</div>
{{end}}
<h2>Suite</h2><pre>{{.SuiteJS}}</pre>
<h2>Parameters</h2><pre>{{.Params}}</pre>
<h2>Shape</h2><pre>{{.Shape}}</pre>
<p>The full figures, with HDR histograms of every operation, are in results.json beside this page.</p>
</body></html>
`))
