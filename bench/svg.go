package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// A minimal line-chart renderer producing inline SVG, so report.html needs nothing from
// the network.

type series struct {
	name   string
	xs, ys []float64
}

type tick struct {
	v     float64
	label string
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// niceTicks returns about n round tick values covering [0, hi].
func niceTicks(hi float64, n int, format func(float64) string) []tick {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []tick
	for v := 0.0; v <= hi*1.0001+step; v += step {
		t = append(t, tick{v, format(v)})
		if v >= hi {
			break
		}
	}
	return t
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%gM", roundSig(v/1e6))
	case math.Abs(v) >= 1e4:
		return fmt.Sprintf("%gk", roundSig(v/1e3))
	default:
		return fmt.Sprintf("%g", roundSig(v))
	}
}

func roundSig(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 3-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// lineChart renders series as an SVG line chart. xTicks, when given, replaces the
// automatic x axis ticks (and fixes the x range to theirs).
func lineChart(title, xLabel, yLabel string, ss []series, xTicks []tick) string {
	const W, H = 820, 320
	const left, right, top, bottom = 64, 170, 34, 44
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range ss {
		for i := range s.xs {
			xmin, xmax = math.Min(xmin, s.xs[i]), math.Max(xmax, s.xs[i])
			ymax = math.Max(ymax, s.ys[i])
		}
	}
	if len(xTicks) > 0 {
		xmin, xmax = xTicks[0].v, xTicks[len(xTicks)-1].v
	} else {
		if math.IsInf(xmin, 0) {
			xmin, xmax = 0, 1
		}
		xmin = math.Min(xmin, 0)
		xTicks = niceTicks(xmax, 8, fmtNum)
		xmax = math.Max(xmax, xTicks[len(xTicks)-1].v)
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	yTicks := niceTicks(ymax, 5, fmtNum)
	ytop := yTicks[len(yTicks)-1].v
	x := func(v float64) float64 { return left + (v-xmin)/(xmax-xmin)*pw }
	y := func(v float64) float64 { return top + ph - v/ytop*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, W, H, W, H, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	for _, t := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, left+pw, y(t.v), y(t.v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`, left-6, y(t.v)+4, html.EscapeString(t.label))
	}
	for _, t := range xTicks {
		if t.v < xmin || t.v > xmax {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eee"/>`, x(t.v), x(t.v), top, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, x(t.v), top+ph+15, html.EscapeString(t.label))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`, left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="12" text-anchor="middle">%s</text>`, left+pw/2, H-6, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" font-size="12" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`, top+ph/2, top+ph/2, html.EscapeString(yLabel))
	for i, s := range ss {
		color := palette[i%len(palette)]
		var pts []string
		for k := range s.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.xs[k]), y(s.ys[k])))
		}
		if len(pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x(s.xs[0]), y(s.ys[0]), color)
		} else if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, color, strings.Join(pts, " "))
		}
		ly := top + 14 + i*18
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`, left+pw+12, left+pw+30, ly-4, ly-4, color)
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" font-size="12">%s</text>`, left+pw+36, ly, html.EscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
