package bench

import (
	"context"
	"fmt"
	"time"
)

// YCSB operation names, as YCSB reports them (lower case).
const (
	OpRead            = "read"
	OpUpdate          = "update"
	OpInsert          = "insert"
	OpScan            = "scan"
	OpReadModifyWrite = "read-modify-write"
)

// ycsbSpec is one YCSB core workload (workloads/workloada … workloadf).
type ycsbSpec struct {
	Summary      string
	Mix          []Mix
	Distribution string
}

func ycsbSpecs() map[string]ycsbSpec {
	return map[string]ycsbSpec{
		"a": {"YCSB A, update heavy: 50% read, 50% update, zipfian", []Mix{{OpRead, 0.5}, {OpUpdate, 0.5}}, DistZipfian},
		"b": {"YCSB B, read mostly: 95% read, 5% update, zipfian", []Mix{{OpRead, 0.95}, {OpUpdate, 0.05}}, DistZipfian},
		"c": {"YCSB C, read only: 100% read, zipfian", []Mix{{OpRead, 1}}, DistZipfian},
		"d": {"YCSB D, read latest: 95% read, 5% insert, latest", []Mix{{OpRead, 0.95}, {OpInsert, 0.05}}, DistLatest},
		"e": {"YCSB E, short ranges: 95% scan, 5% insert, zipfian", []Mix{{OpScan, 0.95}, {OpInsert, 0.05}}, DistZipfian},
		"f": {"YCSB F, read-modify-write: 50% read, 50% read-modify-write, zipfian", []Mix{{OpRead, 0.5}, {OpReadModifyWrite, 0.5}}, DistZipfian},
	}
}

const scanEmulation = "no range-scan endpoint yet: a scan of n records is n sequential GETs of the " +
	"consecutive key numbers from the chosen one (YCSB scans consecutive keys in key order; " +
	"ours are consecutive in insertion order); latency is that of the whole sequence"

func ycsbSuite(letter string) Suite {
	spec := ycsbSpecs()[letter]
	return Suite{
		Name:    "ycsb-" + letter,
		Summary: spec.Summary,
		New: func(p Params) (Workload, error) {
			return newYCSB(spec, p)
		},
	}
}

// ycsbWorkload runs one YCSB core workload: the records 0..RecordCount-1 are loaded first;
// inserts take new key numbers from a shared counter; reads, updates and scans choose
// among the inserted keys with the request distribution.
type ycsbWorkload struct {
	spec     ycsbSpec
	p        Params
	dist     string
	inserts  *ackCounter
	zipf     *scrambledZipfian // shared, immutable
	latest   *skewedLatest     // prototype, cloned per worker
	chooser  *opChooser
	emulated bool
}

func newYCSB(spec ycsbSpec, p Params) (*ycsbWorkload, error) {
	w := &ycsbWorkload{spec: spec, p: p, dist: spec.Distribution, chooser: newOpChooser(spec.Mix)}
	if p.Distribution != "" {
		w.dist = p.Distribution
	}
	w.inserts = newAckCounter(p.RecordCount)
	switch w.dist {
	case DistZipfian:
		// Like YCSB's CoreWorkload: the key space includes the keys this run expects to
		// insert (twice the expected count), so inserted keys become reachable; draws
		// beyond the keys inserted so far are redrawn.
		items := p.RecordCount
		if p.Ops > 0 {
			items += int64(float64(p.Ops) * w.insertProportion() * 2)
		}
		w.zipf = newScrambledZipfian(items)
	case DistLatest:
		w.latest = newSkewedLatest(p.RecordCount)
	case DistUniform:
	default:
		return nil, fmt.Errorf("%w: distribution %q", ErrInvalidConfig, w.dist)
	}
	return w, nil
}

func (w *ycsbWorkload) insertProportion() float64 {
	total, ins := 0.0, 0.0
	for _, m := range w.spec.Mix {
		total += m.Proportion
		if m.Op == OpInsert {
			ins += m.Proportion
		}
	}
	return ins / total
}

func (w *ycsbWorkload) Info() WorkloadInfo {
	info := WorkloadInfo{
		Mix:          w.spec.Mix,
		Distribution: w.dist,
		LoadRecords:  w.p.RecordCount,
		Notes: map[string]string{
			OpRead:   "GET /v1/collections/{c}/docs/{id} (all fields)",
			OpInsert: "PUT with If-None-Match: * (full record)",
		},
	}
	if w.p.WriteAllFields {
		info.Notes[OpUpdate] = "PUT of the full record (write_all_fields)"
	} else {
		info.Notes[OpUpdate] = "PATCH (JSON merge patch) of one random field"
	}
	info.Notes[OpReadModifyWrite] = "GET then " + info.Notes[OpUpdate] + "; latency of the pair; its read and update are also counted under read and update"
	for _, m := range w.spec.Mix {
		info.Ops = append(info.Ops, m.Op)
		if m.Op == OpReadModifyWrite {
			info.Ops = append(info.Ops, OpUpdate)
		}
		if m.Op == OpScan {
			info.Notes[OpScan] = fmt.Sprintf("scan length uniform in [1, %d]", w.p.ScanLength)
			if w.emulated {
				info.Emulations = map[string]string{OpScan: scanEmulation}
			}
		}
	}
	return info
}

func (w *ycsbWorkload) NewWorker(env *WorkerEnv) Worker {
	yw := &ycsbWorker{w: w, env: env}
	if env.rangeOps == nil {
		w.emulated = true
	}
	switch w.dist {
	case DistZipfian:
		yw.keys = w.zipf
	case DistLatest:
		yw.keys = w.latest.clone()
	default:
		yw.keys = uniformChooser{}
	}
	return yw
}

type ycsbWorker struct {
	w    *ycsbWorkload
	env  *WorkerEnv
	keys KeyChooser
}

func (y *ycsbWorker) nextKey() int64 { return y.keys.Next(y.env.Rand, y.w.inserts.Limit()) }

func (y *ycsbWorker) Step(ctx context.Context, start time.Time) error {
	e := y.env
	switch y.w.chooser.Next(e.Rand) {
	case OpRead:
		return e.ReadKey(ctx, OpRead, y.nextKey(), start)
	case OpUpdate:
		return e.UpdateKey(ctx, OpUpdate, y.nextKey(), start)
	case OpInsert:
		n := y.w.inserts.Take()
		defer y.w.inserts.Ack(n)
		return e.PutKey(ctx, OpInsert, n, true, start)
	case OpScan:
		return y.scan(ctx, start)
	case OpReadModifyWrite:
		n := y.nextKey()
		err := e.ReadKey(ctx, OpRead, n, start)
		if err == nil {
			err = e.UpdateKey(ctx, OpUpdate, n, time.Now())
		}
		e.Observe(OpReadModifyWrite, start, one(err), err)
		return err
	}
	return nil
}

// scan reads up to ScanLength consecutive key numbers from a chosen start. With a
// range-scan endpoint it would be one request (see rangeScanner); until then it is an
// emulation, labelled so in the results.
func (y *ycsbWorker) scan(ctx context.Context, start time.Time) error {
	e := y.env
	first := y.nextKey()
	n := int64(1 + e.Rand.IntN(y.w.p.ScanLength))
	verify := e.sampleVerify()
	if e.rangeOps != nil {
		docs, err := e.rangeOps.Scan(ctx, e.Collection, KeyName(first), int(n), verify)
		if err == nil && verify {
			for i := range docs {
				e.verify.checkedInRun.Add(1)
				if err = e.Records.Verify(docs[i].ID, docs[i].Fields); err != nil {
					e.verify.noteErr(err)
					break
				}
			}
		}
		e.Observe(OpScan, start, len(docs), err)
		return err
	}
	last := min(first+n, y.w.inserts.Limit())
	var err error
	read := 0
	for k := first; k < last && err == nil; k++ {
		if err = e.read(ctx, k, verify); err == nil {
			read++
		}
	}
	e.Observe(OpScan, start, read, err)
	return err
}
