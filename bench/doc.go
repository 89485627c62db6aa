// Package bench owns the load suites behind `aerolith bench`: workload generators, the
// runner that drives a node or cluster from outside like a user would, latency recording
// in HDR histograms, and the results (results.json, report.html, markdown, compare).
//
// # Suites
//
// A Suite has a name and a constructor of a Workload; a Workload makes one Worker per
// client; a Worker's Step does one operation. DefaultRegistry lists the suites that ship:
// YCSB core workloads A–F ("ycsb-a" … "ycsb-f"), "write", "write-batch", "query" and
// "changefeed". Adding a suite is one file (suite_<name>.go, with a constructor returning a
// Suite) plus one line in DefaultRegistry. There is no init-time registration and no global
// registry. A suite whose documents are not Records (the query suite's orders) implements
// DataSet: the runner loads its documents, lets it prepare the target (build indexes) and
// has it check the post-run sample. A suite with goroutines of its own beside the workers
// (the changefeed suite's subscribers) implements Background: the runner starts them before
// the warmup and, once the workers stopped, lets them finish before the last drain.
//
// # Protocols
//
// Suites talk to the server through Client, one implementation per protocol: REST
// (rest.go, docs/api.md) and gRPC (grpc.go, the aerolith.v1 DocumentService over one HTTP/2
// connection per node). Both classify failures alike: the server's stable error code (the
// JSON error code, or the reason of the gRPC status's ErrorInfo), else a transport class
// (timeout, connection_refused, http_<status>, grpc_<code>). The changefeed suite's
// subscribers always use gRPC (ChangeService.Watch), whatever the writers' protocol.
//
// # Runs
//
// Run validates the Params, waits for the target to be ready, loads the records the
// workload needs, runs a warmup (discarded) and the measured phase, then reads back a
// sample of what was written. Closed loop: Clients workers each run steps back to back.
// Open loop (Rate > 0): steps are started on a fixed schedule; latency is measured from
// the planned start, so a server that falls behind shows it (no coordinated omission),
// and the results say whether the rate was held. Every run stops by itself: the measured
// phase at Duration or Ops, the whole run at MaxDuration, each request at OpTimeout.
//
// # Verification
//
// Every value written verifies itself (see Records), and a Tracker keeps the highest
// acknowledged version of every key. A sample of reads (VerifyFraction) is decoded and
// checked for integrity and, for linearizable reads, for staleness; VerifySample keys are
// read back after the run. Mismatches are counted as errors of the read under codes
// verify_<kind> and reported in Results.Verify and the warnings, never dropped. The query
// suite knows the data it loaded and compares a sample of query answers whole with it
// (verify_wrong_answer).
//
// # Concurrency
//
// Run owns every goroutine it starts and waits for them before returning: one per worker,
// one per subscriber of a Background suite (stopped by its Finish), the collector (the goroutine of Run itself during the measured phase, draining the
// recorder once a second into the timeline), and the progress line. Workers share the
// recorder through shards (one mutex each; the collector takes one at a time), the
// Tracker, the insert counter and the verification counters (atomics and one mutex each;
// none is held while taking another). Records and the key choosers other than "latest"
// are immutable and shared; a latest chooser and a *rand.Rand belong to one worker.
package bench
