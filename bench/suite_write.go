package bench

import (
	"context"
	"time"
)

// OpWrite is the operation of the write suite.
const OpWrite = "write"

// writeSuite: single-document PUTs of full records (upserts) to keys chosen among
// RecordCount with the request distribution (uniform by default). No load phase.
func writeSuite() Suite {
	return Suite{
		Name:    "write",
		Summary: "single-document PUTs of full records (upserts), uniform over record_count keys",
		New: func(p Params) (Workload, error) {
			return &writeWorkload{p: p, keys: newKeyChooser(p, DistUniform)}, nil
		},
	}
}

type writeWorkload struct {
	p    Params
	keys func() KeyChooser
}

func (w *writeWorkload) Info() WorkloadInfo {
	return WorkloadInfo{
		Mix:          []Mix{{OpWrite, 1}},
		Distribution: distOr(w.p.Distribution, DistUniform),
		Ops:          []string{OpWrite},
		Notes:        map[string]string{OpWrite: "PUT /v1/collections/{c}/docs/{id} of the full record (create or replace)"},
	}
}

func (w *writeWorkload) NewWorker(env *WorkerEnv) Worker {
	return &writeWorker{env: env, keys: w.keys(), n: w.p.RecordCount}
}

type writeWorker struct {
	env  *WorkerEnv
	keys KeyChooser
	n    int64
}

func (w *writeWorker) Step(ctx context.Context, start time.Time) error {
	return w.env.PutKey(ctx, OpWrite, w.keys.Next(w.env.Rand, w.n), false, start)
}

func distOr(d, def string) string {
	if d == "" {
		return def
	}
	return d
}

// newKeyChooser returns a factory of per-worker key choosers over a fixed key space of
// p.RecordCount keys, with p.Distribution or def.
func newKeyChooser(p Params, def string) func() KeyChooser {
	switch distOr(p.Distribution, def) {
	case DistZipfian:
		z := newScrambledZipfian(p.RecordCount)
		return func() KeyChooser { return z }
	case DistLatest:
		l := newSkewedLatest(p.RecordCount)
		return func() KeyChooser { return l.clone() }
	default:
		return func() KeyChooser { return uniformChooser{} }
	}
}
