package bench

import "context"

// Client is what the suites need from a server: one implementation per protocol (REST now;
// gRPC when it lands). Implementations must be safe for concurrent use.
type Client interface {
	// Put writes a whole document; createOnly makes it an insert (If-None-Match: *).
	// It returns the document's new version.
	Put(ctx context.Context, coll, id string, doc []byte, createOnly bool) (int64, error)
	// Patch applies a JSON merge patch and returns the new version.
	Patch(ctx context.Context, coll, id string, patch []byte) (int64, error)
	// Get reads a document. With decode false the body is only drained (Document is nil);
	// with decode true it is parsed so it can be verified.
	Get(ctx context.Context, coll, id string, decode bool) (*Document, error)
	// Batch sends writes in one request and returns one result per write, in order.
	Batch(ctx context.Context, writes []BatchWrite) ([]BatchResult, error)
	// Ready returns nil once the server reports itself ready.
	Ready(ctx context.Context) error
}

// rangeScanner is implemented by clients of servers that have a range-scan endpoint. When
// the client has one, workload E scans with it; otherwise workload E emulates a scan with
// consecutive GETs and says so in the results.
type rangeScanner interface {
	Scan(ctx context.Context, coll, startID string, limit int, decode bool) ([]Document, error)
}

// Document is a document read back.
type Document struct {
	ID      string
	Version int64
	Fields  map[string]string
}

// BatchWrite is one write of a batch (POST /v1/batch). Only puts are used by the suites.
type BatchWrite struct {
	Collection  string
	ID          string
	Doc         []byte // a JSON object
	IfNoneMatch bool
}

// BatchResult is the outcome of one write of a batch.
type BatchResult struct {
	Status  int
	Version int64
	Code    string // error code when Status >= 400
}
