package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
)

// Suite is one named load suite.
//
// Adding a suite is one file plus one line: write suite_<name>.go with a constructor
// returning a Suite (see suite_write.go for a small one) and add it to the list in
// DefaultRegistry. There is no init-time registration: the registry is a value built by a
// constructor and passed to whoever runs suites.
type Suite struct {
	Name    string
	Summary string
	// RecordCount is the record count the command line uses for this suite when none is
	// given (0: the command's default).
	RecordCount int64
	// New checks the parameters this suite cares about and builds a workload for one run.
	// p has its defaults applied and has been validated.
	New func(p Params) (Workload, error)
}

// Workload is one run of a suite: its description and a factory of workers.
type Workload interface {
	Info() WorkloadInfo
	// NewWorker builds the state of one client; it is called once per client before the
	// run starts, from one goroutine.
	NewWorker(env *WorkerEnv) Worker
}

// Worker is one client of a workload. A worker is used by one goroutine only.
type Worker interface {
	// Step performs one operation of the workload (a read-modify-write is one step),
	// records what it did through the WorkerEnv, and returns the first error it met (nil
	// when everything succeeded). start is the step's planned start (open loop) or now.
	Step(ctx context.Context, start time.Time) error
}

// DataSet is implemented by a Workload whose documents are its own rather than Records
// (the query suite). The runner then loads key numbers 0..LoadRecords-1 with AppendDoc,
// calls Prepare after the load and before it makes the workers, and checks the post-run
// sample with ReadBack instead of reading Records back.
type DataSet interface {
	// AppendDoc appends the document of key number n (its id is KeyName(n)).
	AppendDoc(buf []byte, n int64) []byte
	// Prepare readies the target for the measured phase (builds indexes, say). An error
	// ends the run before it is measured.
	Prepare(ctx context.Context, env *WorkerEnv) error
	// ReadBack reads key number n and checks it against what AppendDoc wrote, counting
	// the check in the verification results.
	ReadBack(ctx context.Context, env *WorkerEnv, n int64) error
}

// Background is implemented by a Workload that runs goroutines of its own beside its
// workers: the changefeed suite's subscribers. The runner calls Start after the load and
// Prepare, before the warmup, and Finish once the workers stopped and before it drains the
// recorder for the last time, so what the goroutines observe of the last steps counts.
type Background interface {
	// Start starts the goroutines, goroutine i with the env newEnv(i) (its own random
	// stream, a recorder shard and a ChangeService client), and returns once they are
	// ready for the workers' first step. When it fails nothing is left running.
	Start(ctx context.Context, newEnv func(i int) *WorkerEnv) error
	// Finish waits at most settle, or until ctx ends, for the goroutines to observe what
	// the workers did, stops them, records what they missed as errors (not when ctx ended
	// first: the run was cut short) and reports. It is called once after Start succeeded.
	Finish(ctx context.Context, settle time.Duration) *StreamStats
}

// WorkloadInfo describes a workload for the runner and the report.
type WorkloadInfo struct {
	Mix          []Mix
	Distribution string
	// LoadRecords is how many records (key numbers 0..LoadRecords-1) the runner inserts
	// before the measured phase; 0 means the suite needs no load phase.
	LoadRecords int64
	// Ops lists the operation names in report order.
	Ops []string
	// Emulations and Notes are copied into the results (see SuiteInfo).
	Emulations map[string]string
	Notes      map[string]string
}

// Registry is an ordered set of suites by name.
type Registry struct {
	suites []Suite
}

// NewRegistry returns a registry of the given suites. It panics on a duplicate name (a
// programming error in the list).
func NewRegistry(suites ...Suite) *Registry {
	r := &Registry{}
	for _, s := range suites {
		if _, ok := r.Get(s.Name); ok {
			panic("bench: duplicate suite " + s.Name)
		}
		r.suites = append(r.suites, s)
	}
	return r
}

// DefaultRegistry returns the suites that ship with aerolith. To add a suite, add its
// constructor here.
func DefaultRegistry() *Registry {
	return NewRegistry(
		ycsbSuite("a"), ycsbSuite("b"), ycsbSuite("c"), ycsbSuite("d"), ycsbSuite("e"), ycsbSuite("f"),
		writeSuite(),
		writeBatchSuite(),
		querySuite(),
		changefeedSuite(),
		xdcSuite(),
	)
}

// Get returns the suite with that name.
func (r *Registry) Get(name string) (Suite, bool) {
	for _, s := range r.suites {
		if s.Name == name {
			return s, true
		}
	}
	return Suite{}, false
}

// Suites returns the suites in registry order.
func (r *Registry) Suites() []Suite { return slices.Clone(r.suites) }

// Names returns the suite names in registry order.
func (r *Registry) Names() []string {
	n := make([]string, len(r.suites))
	for i, s := range r.suites {
		n[i] = s.Name
	}
	return n
}

func (r *Registry) lookup(name string) (Suite, error) {
	s, ok := r.Get(name)
	if !ok {
		return Suite{}, fmt.Errorf("%w %q (have %s)", ErrUnknownSuite, name, strings.Join(r.Names(), ", "))
	}
	return s, nil
}

// WorkerEnv is what a worker works with: its client, randomness and the run's shared
// state. The helpers (ReadKey, PutKey, ...) do an operation on one key number, keep the
// tracker current, verify sampled reads and record the outcome, so suites stay short.
type WorkerEnv struct {
	ID         int
	Rand       *rand.Rand
	Client     Client
	Collection string
	Records    Records
	Tracker    *Tracker
	Params     Params

	shard    *recShard
	verify   *verifyCounters
	buf      []byte
	stale    bool // check staleness of reads (linearizable reads only)
	postRun  bool // reads are the post-run verification
	discard  bool // the current step began in the warmup: record nothing
	rangeOps rangeScanner
	data     DataSet                // the workload's own documents, when it has them
	watch    pb.ChangeServiceClient // a Background workload's change streams (gRPC)
}

// appendDoc appends the full document of key number n at generation gen: a Record, or the
// workload's own document when it has a DataSet.
func (e *WorkerEnv) appendDoc(buf []byte, n int64, gen uint64) []byte {
	if e.data != nil {
		return e.data.AppendDoc(buf, n)
	}
	return e.Records.AppendDoc(buf, KeyName(n), gen)
}

// Observe records an operation that started at start: err nil means success. items is
// the number of documents it handled successfully (see OpStats.Items).
func (e *WorkerEnv) Observe(op string, start time.Time, items int, err error) {
	e.ObserveLatency(op, time.Since(start), items, err)
}

// ObserveLatency is Observe with a latency the worker measured itself, to leave out work
// done after the answer arrived (checking a large answer, say).
func (e *WorkerEnv) ObserveLatency(op string, lat time.Duration, items int, err error) {
	if e.discard {
		return
	}
	if err != nil {
		e.shard.observe(op, 0, items, errorCode(err))
		return
	}
	e.shard.observe(op, lat, items, "")
}

// ObserveItemErrors records n failed items of a batch operation under an error code.
func (e *WorkerEnv) ObserveItemErrors(op, code string, n int) {
	if !e.discard {
		e.shard.itemErrors(op, code, n)
	}
}

// sampleVerify decides whether this read is checked.
func (e *WorkerEnv) sampleVerify() bool { return e.Rand.Float64() < e.Params.VerifyFraction }

// ReadKey reads key number n as op (recorded from start), checking a sample of reads.
func (e *WorkerEnv) ReadKey(ctx context.Context, op string, n int64, start time.Time) error {
	err := e.read(ctx, n, e.sampleVerify())
	e.Observe(op, start, one(err), err)
	return err
}

// read reads key n and, when verify is set, checks it against the tracker and its tags.
func (e *WorkerEnv) read(ctx context.Context, n int64, verify bool) error {
	id := KeyName(n)
	floor := e.Tracker.Version(n) // acknowledged before this read began
	doc, err := e.Client.Get(ctx, e.Collection, id, verify)
	if !verify {
		return err
	}
	if e.postRun {
		e.verify.checkedPostRun.Add(1)
	} else {
		e.verify.checkedInRun.Add(1)
	}
	if err != nil {
		if api := (*APIError)(nil); errors.As(err, &api) && api.Code == "not_found" && floor > 0 {
			err = &VerifyError{Kind: VerifyMissing, ID: id, Detail: fmt.Sprintf("not found, version %d was acknowledged", floor)}
		}
		e.verify.noteErr(err)
		return err
	}
	err = e.check(id, doc, floor)
	e.verify.noteErr(err)
	return err
}

// check verifies a document read for id against the acknowledged version floor.
func (e *WorkerEnv) check(id string, doc *Document, floor int64) error {
	if doc.ID != id {
		return &VerifyError{Kind: VerifyWrongID, ID: id, Detail: "answer is for " + doc.ID}
	}
	if e.stale && doc.Version < floor {
		return &VerifyError{Kind: VerifyStaleVersion, ID: id, Detail: fmt.Sprintf("read version %d after version %d was acknowledged", doc.Version, floor)}
	}
	return e.Records.Verify(id, doc.Fields)
}

// PutKey writes the full record of key n (an insert when createOnly) as op.
func (e *WorkerEnv) PutKey(ctx context.Context, op string, n int64, createOnly bool, start time.Time) error {
	id := KeyName(n)
	e.buf = e.appendDoc(e.buf[:0], n, e.Rand.Uint64())
	v, err := e.Client.Put(ctx, e.Collection, id, e.buf, createOnly)
	if err == nil {
		e.Tracker.Acked(n, v)
	}
	e.Observe(op, start, one(err), err)
	return err
}

// UpdateKey updates key n as op: a merge patch of one random field, or with
// Params.WriteAllFields a PUT of the whole record (YCSB's writeallfields).
func (e *WorkerEnv) UpdateKey(ctx context.Context, op string, n int64, start time.Time) error {
	if e.Params.WriteAllFields {
		return e.PutKey(ctx, op, n, false, start)
	}
	id := KeyName(n)
	e.buf = e.Records.AppendField(e.buf[:0], id, e.Rand.IntN(e.Records.FieldCount), e.Rand.Uint64())
	v, err := e.Client.Patch(ctx, e.Collection, id, e.buf)
	if err == nil {
		e.Tracker.Acked(n, v)
	}
	e.Observe(op, start, one(err), err)
	return err
}

// one is the item count of a single-document operation: 1 when it succeeded.
func one(err error) int {
	if err != nil {
		return 0
	}
	return 1
}
