package bench

import (
	"context"
	"fmt"
	"time"
)

// OpBatch is the operation of the write-batch suite.
const OpBatch = "batch"

// writeBatchSuite: POST /v1/batch of BatchSize full-record PUTs to distinct keys chosen
// among RecordCount with the request distribution (uniform by default). No load phase.
func writeBatchSuite() Suite {
	return Suite{
		Name:    "write-batch",
		Summary: "POST /v1/batch of batch_size full-record PUTs (upserts) to distinct keys, uniform over record_count keys",
		New: func(p Params) (Workload, error) {
			if p.RecordCount < int64(p.BatchSize) {
				return nil, fmt.Errorf("%w: record count %d is smaller than the batch size %d (a batch writes distinct keys)", ErrInvalidConfig, p.RecordCount, p.BatchSize)
			}
			return &batchWorkload{p: p, keys: newKeyChooser(p, DistUniform)}, nil
		},
	}
}

type batchWorkload struct {
	p    Params
	keys func() KeyChooser
}

func (w *batchWorkload) Info() WorkloadInfo {
	return WorkloadInfo{
		Mix:          []Mix{{OpBatch, 1}},
		Distribution: distOr(w.p.Distribution, DistUniform),
		Ops:          []string{OpBatch},
		Notes: map[string]string{OpBatch: fmt.Sprintf("POST /v1/batch of %d puts; items = documents; a batch with any failed item "+
			"counts as a failed operation (code batch_item_errors) and its items' codes are in item_errors_by_code", w.p.BatchSize)},
	}
}

func (w *batchWorkload) NewWorker(env *WorkerEnv) Worker {
	return &batchWorker{env: env, keys: w.keys(), p: w.p}
}

type batchWorker struct {
	env    *WorkerEnv
	keys   KeyChooser
	p      Params
	nums   []int64
	writes []BatchWrite
	docs   []byte
}

// errBatchItems marks a batch in which some writes failed.
var errBatchItems = &APIError{Status: 200, Code: "batch_item_errors", Message: "some writes of the batch failed"}

func (b *batchWorker) Step(ctx context.Context, start time.Time) error {
	e := b.env
	b.nums = pickDistinct(b.nums[:0], b.p.BatchSize, func() int64 { return b.keys.Next(e.Rand, b.p.RecordCount) }, b.p.RecordCount, e.Rand.Int64N)
	err := batchPut(ctx, e, OpBatch, b.nums, false, start, &b.writes, &b.docs)
	return err
}

// pickDistinct appends n distinct key numbers drawn from next (falling back to uniform
// draws when the distribution keeps repeating itself, as a hot zipfian key does).
func pickDistinct(dst []int64, n int, next func() int64, space int64, uniform func(int64) int64) []int64 {
	seen := make(map[int64]struct{}, n)
	for tries := 0; len(dst) < n; tries++ {
		k := next()
		if tries > 4*n {
			k = uniform(space)
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		dst = append(dst, k)
	}
	return dst
}

// batchPut writes the full records of key numbers nums in one batch, recorded as op.
// The per-item outcomes go into the tracker and the item error counts.
func batchPut(ctx context.Context, e *WorkerEnv, op string, nums []int64, createOnly bool, start time.Time, writes *[]BatchWrite, docs *[]byte) error {
	ws := (*writes)[:0]
	d := (*docs)[:0]
	offs := make([]int, 0, len(nums)+1)
	for _, n := range nums {
		offs = append(offs, len(d))
		d = e.appendDoc(d, n, e.Rand.Uint64())
	}
	offs = append(offs, len(d))
	for i, n := range nums {
		ws = append(ws, BatchWrite{Collection: e.Collection, ID: KeyName(n), Doc: d[offs[i]:offs[i+1]], IfNoneMatch: createOnly})
	}
	*writes, *docs = ws, d
	res, err := e.Client.Batch(ctx, ws)
	if err != nil {
		e.Observe(op, start, 0, err)
		return err
	}
	failed := map[string]int{}
	ok := 0
	for i, r := range res {
		if r.Status >= 200 && r.Status < 300 {
			e.Tracker.Acked(nums[i], r.Version)
			ok++
			continue
		}
		failed[r.Code]++
	}
	for code, n := range failed {
		e.ObserveItemErrors(op, code, n)
	}
	if len(failed) > 0 {
		e.Observe(op, start, ok, errBatchItems)
		return errBatchItems
	}
	e.Observe(op, start, ok, nil)
	return nil
}
