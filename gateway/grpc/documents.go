package grpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Method names, for logs of internal errors.
const (
	methodPut     = "Put"
	methodCreate  = "Create"
	methodPatch   = "Patch"
	methodDelete  = "Delete"
	methodBatch   = "Batch"
	methodGet     = "Get"
	methodQuery   = "Query"
	methodHistory = "History"
	methodList    = "ListCollections"
	methodWatch   = "Watch"
)

// Put creates or replaces a document.
func (s *Server) Put(ctx context.Context, req *pb.PutRequest) (*pb.WriteResult, error) {
	body, err := s.document(req.GetDocJson(), req.GetDoc(), req.Body != nil)
	if err != nil {
		return nil, s.status(ctx, methodPut, err, nil)
	}
	w := db.Write{Op: log.OpPut, Collection: req.Collection, ID: req.Id, Body: body,
		IfNoneMatch: req.IfNoneMatch, IdempotencyKey: req.IdempotencyKey, Resolves: req.Resolves}
	if req.IfMatch != nil {
		w.IfMatch, w.HasIfMatch = *req.IfMatch, true
	}
	return s.write(ctx, methodPut, w)
}

// Create stores a document under a generated id (derived from the caller and the
// idempotency key when there is one, so that a retry names the same document).
func (s *Server) Create(ctx context.Context, req *pb.CreateRequest) (*pb.WriteResult, error) {
	body, err := s.document(req.GetDocJson(), req.GetDoc(), req.Body != nil)
	if err != nil {
		return nil, s.status(ctx, methodCreate, err, nil)
	}
	w := db.Write{Op: log.OpPut, Collection: req.Collection, ID: db.NewID(time.Now()), Body: body,
		IfNoneMatch: true, IdempotencyKey: req.IdempotencyKey}
	if w.IdempotencyKey != "" {
		p, err := principal(ctx)
		if err != nil {
			return nil, s.status(ctx, methodCreate, err, nil)
		}
		w.ID = db.IDFromKey(p, w.IdempotencyKey)
	}
	return s.write(ctx, methodCreate, w)
}

// Patch applies a JSON merge patch.
func (s *Server) Patch(ctx context.Context, req *pb.PatchRequest) (*pb.WriteResult, error) {
	body, err := s.document(req.GetPatchJson(), req.GetPatch(), req.Body != nil)
	if err != nil {
		return nil, s.status(ctx, methodPatch, err, nil)
	}
	w := db.Write{Op: log.OpPatch, Collection: req.Collection, ID: req.Id, Body: body, IdempotencyKey: req.IdempotencyKey, Resolves: req.Resolves}
	if req.IfMatch != nil {
		w.IfMatch, w.HasIfMatch = *req.IfMatch, true
	}
	return s.write(ctx, methodPatch, w)
}

// Delete deletes a document.
func (s *Server) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.WriteResult, error) {
	w := db.Write{Op: log.OpDelete, Collection: req.Collection, ID: req.Id, IdempotencyKey: req.IdempotencyKey, Resolves: req.Resolves}
	if req.IfMatch != nil {
		w.IfMatch, w.HasIfMatch = *req.IfMatch, true
	}
	return s.write(ctx, methodDelete, w)
}

func (s *Server) write(ctx context.Context, method string, w db.Write) (*pb.WriteResult, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, s.status(ctx, method, err, nil)
	}
	r, err := s.cfg.Store.Write(ctx, p, w)
	if err != nil {
		return nil, s.status(ctx, method, err, nil)
	}
	return writeResult(r), nil
}

func writeResult(r db.Result) *pb.WriteResult {
	return &pb.WriteResult{Collection: r.Collection, Id: r.ID, Version: r.Version, Ts: timestamp(r.TS),
		Position: position(r.Position), Created: r.Created}
}

func timestamp(ts log.Timestamp) *timestamppb.Timestamp { return timestamppb.New(ts.Time()) }

func position(p log.Position) *pb.Position { return &pb.Position{Shard: p.Shard, Index: p.Index} }

// document returns a request's document or patch as compact JSON, checked as REST checks
// a body: within the size and depth limits, valid JSON, an object.
func (s *Server) document(raw []byte, st *structpb.Struct, present bool) ([]byte, error) {
	if !present {
		return nil, fmt.Errorf("%w: the request has no document", db.ErrInvalidDocument)
	}
	b, err := s.json(raw, st)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: the document must be a JSON object", db.ErrInvalidDocument)
	}
	return b, nil
}

// json returns raw (or st converted to JSON) compacted, after the limit and validity
// checks.
func (s *Server) json(raw []byte, st *structpb.Struct) ([]byte, error) {
	if st != nil {
		var err error
		if raw, err = protojson.Marshal(st); err != nil {
			return nil, fmt.Errorf("%w: %v", gateway.ErrInvalidJSON, err)
		}
	}
	if len(raw) > s.cfg.Limits.MaxBodyBytes {
		return nil, fmt.Errorf("%w: the document's %d bytes exceed %d", gateway.ErrBodyTooLarge, len(raw), s.cfg.Limits.MaxBodyBytes)
	}
	if d := gateway.JSONDepth(raw); d > s.cfg.Limits.MaxJSONDepth {
		return nil, fmt.Errorf("%w: nesting depth %d exceeds the limit of %d", gateway.ErrJSONTooDeep, d, s.cfg.Limits.MaxJSONDepth)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%w: %v", gateway.ErrInvalidJSON, err)
	}
	return buf.Bytes(), nil
}

func consistency(c pb.Consistency) (db.Consistency, error) {
	switch c {
	case pb.Consistency_CONSISTENCY_UNSPECIFIED, pb.Consistency_CONSISTENCY_LINEARIZABLE:
		return db.Linearizable, nil
	case pb.Consistency_CONSISTENCY_LOCAL:
		return db.Local, nil
	}
	return 0, fmt.Errorf("%w: unknown consistency %d", db.ErrInvalidArgument, c)
}

// Get reads a document.
func (s *Server) Get(ctx context.Context, req *pb.GetRequest) (*pb.Document, error) {
	c, err := consistency(req.Consistency)
	if err != nil {
		return nil, s.status(ctx, methodGet, err, nil)
	}
	d, err := s.cfg.Store.Get(ctx, req.Collection, req.Id, c)
	if err != nil {
		return nil, s.status(ctx, methodGet, err, nil)
	}
	return &pb.Document{Collection: d.Collection, Id: d.ID, Version: d.Version, Ts: timestamp(d.TS),
		Position: position(d.Position), DocJson: d.Body}, nil
}

var ops = map[pb.Op]log.Op{pb.Op_OP_PUT: log.OpPut, pb.Op_OP_PATCH: log.OpPatch, pb.Op_OP_DELETE: log.OpDelete}

func opOf(o log.Op) pb.Op {
	for k, v := range ops {
		if v == o {
			return k
		}
	}
	return pb.Op_OP_UNSPECIFIED
}

// Batch applies many writes; per-shard atomic, one result per write.
func (s *Server) Batch(ctx context.Context, req *pb.BatchRequest) (*pb.BatchResponse, error) {
	ws := make([]db.Write, len(req.Writes))
	for i, bw := range req.Writes {
		op, ok := ops[bw.Op]
		if !ok {
			return nil, s.status(ctx, methodBatch, fmt.Errorf("%w: writes[%d].op must be OP_PUT, OP_PATCH or OP_DELETE", db.ErrInvalidArgument, i), nil)
		}
		w := db.Write{Op: op, Collection: bw.Collection, ID: bw.Id, IfNoneMatch: bw.IfNoneMatch, Resolves: bw.Resolves}
		if bw.IfMatch != nil {
			w.IfMatch, w.HasIfMatch = *bw.IfMatch, true
		}
		// As in REST, a body that is not JSON fails the whole request; one that is JSON but
		// not an object fails its item (and its shard's other writes) in the database.
		if op != log.OpDelete && bw.Body != nil {
			b, err := s.json(bw.GetDocJson(), bw.GetDoc())
			if err != nil {
				return nil, s.status(ctx, methodBatch, fmt.Errorf("writes[%d]: %w", i, err), nil)
			}
			w.Body = b
		}
		ws[i] = w
	}
	p, err := principal(ctx)
	if err != nil {
		return nil, s.status(ctx, methodBatch, err, nil)
	}
	res, err := s.cfg.Store.Batch(ctx, p, ws, req.IdempotencyKey)
	if err != nil {
		return nil, s.status(ctx, methodBatch, err, nil)
	}
	out := &pb.BatchResponse{Results: make([]*pb.BatchResult, len(res))}
	for i, r := range res {
		if r.Err != nil {
			info := s.lookup(methodBatch, r.Err)
			e := &pb.Error{GrpcCode: int32(info.GRPC), Code: info.Code, Message: info.Message, CurrentVersion: info.CurrentVersion}
			out.Results[i] = &pb.BatchResult{Outcome: &pb.BatchResult_Error{Error: e}}
			continue
		}
		out.Results[i] = &pb.BatchResult{Outcome: &pb.BatchResult_Ok{Ok: writeResult(r.Result)}}
	}
	return out, nil
}

// Query runs a filter over a collection.
func (s *Server) Query(ctx context.Context, req *pb.QueryRequest) (*pb.QueryResponse, error) {
	c, err := consistency(req.Consistency)
	if err != nil {
		return nil, s.status(ctx, methodQuery, err, nil)
	}
	r := db.QueryRequest{
		Collection: req.Collection, Filter: req.Filter, Limit: int(req.Limit), Cursor: req.Cursor,
		Fields: req.Fields, Count: req.Count, Explain: req.Explain, Consistency: c,
	}
	for _, sf := range req.Sort {
		r.Sort = append(r.Sort, query.SortField{Field: sf.Field, Desc: sf.Desc})
	}
	res, err := s.cfg.Store.Query(ctx, r)
	if err != nil {
		return nil, s.status(ctx, methodQuery, err, nil)
	}
	out := &pb.QueryResponse{NextCursor: res.NextCursor}
	if req.Count {
		n := res.Count
		out.Count = &n
	}
	for _, d := range res.Docs {
		out.Docs = append(out.Docs, &pb.Document{Collection: d.Collection, Id: d.ID, Version: d.Version, Ts: timestamp(d.TS), DocJson: d.Body})
	}
	for _, p := range res.Plan {
		out.Plan = append(out.Plan, &pb.ShardPlan{Shard: p.Shard, Access: p.Access, Index: p.Index, SortFromIndex: p.Ordered,
			Ranges: p.Ranges, DocsExamined: p.Examined, DocsMatched: p.Matched, EvalErrors: p.EvalErrors, TimeMs: p.Millis})
	}
	return out, nil
}

// History returns every version of a document, oldest first.
func (s *Server) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryResponse, error) {
	c, err := consistency(req.Consistency)
	if err != nil {
		return nil, s.status(ctx, methodHistory, err, nil)
	}
	vs, err := s.cfg.Store.History(ctx, req.Collection, req.Id, c)
	if err != nil {
		return nil, s.status(ctx, methodHistory, err, nil)
	}
	out := &pb.HistoryResponse{Collection: req.Collection, Id: req.Id, Versions: make([]*pb.Version, len(vs))}
	for i, v := range vs {
		out.Versions[i] = &pb.Version{Version: v.Version, Op: opOf(v.Op), Ts: timestamp(v.TS), Principal: v.Principal,
			Position: position(v.Position), DocJson: v.Body}
	}
	return out, nil
}

// ListCollections lists collections with their live document counts.
func (s *Server) ListCollections(ctx context.Context, req *pb.ListCollectionsRequest) (*pb.ListCollectionsResponse, error) {
	c, err := consistency(req.Consistency)
	if err != nil {
		return nil, s.status(ctx, methodList, err, nil)
	}
	cols, err := s.cfg.Store.Collections(ctx, c)
	if err != nil {
		return nil, s.status(ctx, methodList, err, nil)
	}
	out := &pb.ListCollectionsResponse{Collections: make([]*pb.Collection, len(cols))}
	for i, cc := range cols {
		out.Collections[i] = &pb.Collection{Name: cc.Name, Count: cc.Count}
	}
	return out, nil
}
