package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws one self-overwriting status line on a terminal: phase, elapsed, a bar
// when the phase has a known end, operations per second over the last refresh, errors.
// It owns one goroutine, started by newProgress and stopped by stop.
type progress struct {
	w     io.Writer
	phase string
	// total is the expected length: a duration (by time) or a count (by done()).
	byTime  time.Duration
	byCount int64
	counts  func() (done, errs int64)
	start   time.Time
	quit    chan struct{}
	wg      sync.WaitGroup
}

const progressEvery = 500 * time.Millisecond

// newProgress starts a progress line on w; with w nil it does nothing.
func newProgress(w io.Writer, phase string, byTime time.Duration, byCount int64, counts func() (int64, int64)) *progress {
	p := &progress{w: w, phase: phase, byTime: byTime, byCount: byCount, counts: counts, start: time.Now(), quit: make(chan struct{})}
	if w == nil {
		return p
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	lastT, lastN := p.start, int64(0)
	for {
		select {
		case <-p.quit:
			done, errs := p.counts()
			fmt.Fprintf(p.w, "\r\x1b[K%s\n", p.line(time.Since(p.start), done, errs, float64(done)/max(time.Since(p.start).Seconds(), 1e-9)))
			return
		case now := <-t.C:
			done, errs := p.counts()
			rate := float64(done-lastN) / now.Sub(lastT).Seconds()
			lastT, lastN = now, done
			fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(now.Sub(p.start), done, errs, rate))
		}
	}
}

func (p *progress) line(el time.Duration, done, errs int64, rate float64) string {
	frac := -1.0
	switch {
	case p.byCount > 0:
		frac = float64(done) / float64(p.byCount)
	case p.byTime > 0:
		frac = el.Seconds() / p.byTime.Seconds()
	}
	bar := ""
	if frac >= 0 {
		frac = min(frac, 1)
		const width = 24
		n := int(frac * width)
		bar = fmt.Sprintf(" [%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
	}
	return fmt.Sprintf("%-7s %6.1fs%s  %s ops/s  %s done  %d errors", p.phase, el.Seconds(), bar, humanCount(rate), humanCount(float64(done)), errs)
}

// stop ends the line and waits for the goroutine.
func (p *progress) stop() {
	if p.w == nil {
		return
	}
	close(p.quit)
	p.wg.Wait()
}

func humanCount(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.2fM", f/1e6)
	case f >= 1e4:
		return fmt.Sprintf("%.1fk", f/1e3)
	default:
		return fmt.Sprintf("%.0f", f)
	}
}
