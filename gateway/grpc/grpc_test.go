package grpc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/node"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type cluster struct {
	node    *node.Node
	conn    *grpc.ClientConn
	docs    pb.DocumentServiceClient
	changes pb.ChangeServiceClient
}

// startNode starts a real node (dragonboat, pebble) with HTTP and gRPC on free loopback
// ports and connects a gRPC client to it.
func startNode(t *testing.T, shards int) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), Shards: shards,
		Limits: gateway.Limits{MaxBodyBytes: 4096, MaxJSONDepth: 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if !strings.HasPrefix(n.GRPCAddr(), "127.0.0.1:") || strings.HasSuffix(n.GRPCAddr(), ":0") {
		t.Fatalf("grpc address %q", n.GRPCAddr())
	}
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &cluster{node: n, conn: conn, docs: pb.NewDocumentServiceClient(conn), changes: pb.NewChangeServiceClient(conn)}
}

// reason returns err's status code and the reason and metadata of its ErrorInfo detail.
func reason(err error) (codes.Code, string, map[string]string) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Domain == "aerolith" {
			return st.Code(), ei.Reason, ei.Metadata
		}
	}
	return st.Code(), "", nil
}

func wantErr(t *testing.T, what string, err error, code codes.Code, why string) map[string]string {
	t.Helper()
	c, r, md := reason(err)
	if c != code || r != why {
		t.Fatalf("%s: got %v / %q (%v), want %v / %q", what, c, r, err, code, why)
	}
	return md
}

func js(s string) *pb.PutRequest_DocJson { return &pb.PutRequest_DocJson{DocJson: []byte(s)} }

func u64(v uint64) *uint64 { return &v }

func TestDocumentsOverGRPC(t *testing.T) {
	c := startNode(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const coll, id = "orders", "a.b:c@d-1"

	// Numbers, key order and formatting come back exactly as sent.
	exact := `{"big":12345678901234567890,"f":1.50,"z":1,"a":[true,null]}`
	r, err := c.docs.Put(ctx, &pb.PutRequest{Collection: coll, Id: id, Body: js(exact)})
	if err != nil || !r.Created || r.Version != 1 || r.Position.GetIndex() == 0 || r.Ts.AsTime().IsZero() {
		t.Fatalf("create: %v %v", r, err)
	}
	d, err := c.docs.Get(ctx, &pb.GetRequest{Collection: coll, Id: id})
	if err != nil || string(d.DocJson) != exact || d.Version != 1 || !proto(d.Position, r.Position) {
		t.Fatalf("get: %v %v", d, err)
	}
	// A Struct is accepted too.
	st, _ := structpb.NewStruct(map[string]any{"total": 6, "status": "open"})
	if r, err = c.docs.Put(ctx, &pb.PutRequest{Collection: coll, Id: id, Body: &pb.PutRequest_Doc{Doc: st}}); err != nil || r.Created || r.Version != 2 {
		t.Fatalf("replace: %v %v", r, err)
	}
	_, err = c.docs.Patch(ctx, &pb.PatchRequest{Collection: coll, Id: id, IfMatch: u64(1), Body: &pb.PatchRequest_PatchJson{PatchJson: []byte(`{"status":"paid"}`)}})
	if md := wantErr(t, "stale patch", err, codes.FailedPrecondition, "precondition_failed"); md["current_version"] != "2" {
		t.Fatalf("stale patch metadata %v", md)
	}
	if r, err = c.docs.Patch(ctx, &pb.PatchRequest{Collection: coll, Id: id, IfMatch: u64(2), Body: &pb.PatchRequest_PatchJson{PatchJson: []byte(`{"status":"paid"}`)}}); err != nil || r.Version != 3 {
		t.Fatalf("patch: %v %v", r, err)
	}
	_, err = c.docs.Put(ctx, &pb.PutRequest{Collection: coll, Id: id, IfNoneMatch: true, Body: js(`{}`)})
	wantErr(t, "create-only on existing", err, codes.FailedPrecondition, "precondition_failed")
	if d, err = c.docs.Get(ctx, &pb.GetRequest{Collection: coll, Id: id, Consistency: pb.Consistency_CONSISTENCY_LOCAL}); err != nil ||
		string(d.DocJson) != `{"status":"paid","total":6}` {
		t.Fatalf("local get: %v %v", d, err)
	}
	if r, err = c.docs.Delete(ctx, &pb.DeleteRequest{Collection: coll, Id: id, IfMatch: u64(3)}); err != nil || r.Version != 4 {
		t.Fatalf("delete: %v %v", r, err)
	}
	_, err = c.docs.Get(ctx, &pb.GetRequest{Collection: coll, Id: id})
	wantErr(t, "get deleted", err, codes.NotFound, "not_found")
	_, err = c.docs.Patch(ctx, &pb.PatchRequest{Collection: coll, Id: id, Body: &pb.PatchRequest_PatchJson{PatchJson: []byte(`{}`)}})
	wantErr(t, "patch deleted", err, codes.NotFound, "not_found")

	h, err := c.docs.History(ctx, &pb.HistoryRequest{Collection: coll, Id: id})
	if err != nil || len(h.Versions) != 4 {
		t.Fatalf("history: %v %v", h, err)
	}
	wantOps := []pb.Op{pb.Op_OP_PUT, pb.Op_OP_PUT, pb.Op_OP_PATCH, pb.Op_OP_DELETE}
	for i, v := range h.Versions {
		if v.Op != wantOps[i] || v.Version != uint64(i+1) || v.Principal != "anonymous" || v.Position.GetShard() != r.Position.Shard {
			t.Fatalf("history[%d] = %v", i, v)
		}
	}
	if string(h.Versions[0].DocJson) != exact || len(h.Versions[3].DocJson) != 0 {
		t.Fatalf("history bodies: %q, %q", h.Versions[0].DocJson, h.Versions[3].DocJson)
	}

	// Idempotency: the same key gives the same answer and no second event.
	create := &pb.CreateRequest{Collection: coll, IdempotencyKey: "order-77", Body: &pb.CreateRequest_DocJson{DocJson: []byte(`{"n":1}`)}}
	first, err := c.docs.Create(ctx, create)
	if err != nil || !first.Created || len(first.Id) == 0 {
		t.Fatalf("create: %v %v", first, err)
	}
	again, err := c.docs.Create(ctx, create)
	if err != nil || again.Id != first.Id || again.Version != first.Version || !proto(again.Position, first.Position) {
		t.Fatalf("idempotent create: %v vs %v (%v)", again, first, err)
	}
	if h, err = c.docs.History(ctx, &pb.HistoryRequest{Collection: coll, Id: first.Id}); err != nil || len(h.Versions) != 1 {
		t.Fatalf("retry appended an event: %v %v", h, err)
	}
	put := &pb.PutRequest{Collection: coll, Id: "k1", IdempotencyKey: "key-1", Body: js(`{"v":1}`)}
	p1, err := c.docs.Put(ctx, put)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := c.docs.Put(ctx, put); err != nil || p2.Version != p1.Version || !proto(p2.Position, p1.Position) {
		t.Fatalf("idempotent put: %v vs %v (%v)", p2, p1, err)
	}
	// Keys are scoped to the caller and the shard: reuse it for a document of the same shard.
	for i := 2; put.Id == "k1"; i++ {
		if id := fmt.Sprintf("k%d", i); log.ShardOf(coll, id, 2) == log.ShardOf(coll, "k1", 2) {
			put.Id = id
		}
	}
	_, err = c.docs.Put(ctx, put)
	wantErr(t, "key reused for another document", err, codes.AlreadyExists, "idempotency_key_reused")

	cols, err := c.docs.ListCollections(ctx, &pb.ListCollectionsRequest{})
	if err != nil || len(cols.Collections) != 1 || cols.Collections[0].Name != coll || cols.Collections[0].Count != 2 {
		t.Fatalf("collections: %v %v", cols, err)
	}
}

func proto(a, b *pb.Position) bool {
	return a.GetShard() == b.GetShard() && a.GetIndex() == b.GetIndex()
}

func TestErrorsOverGRPC(t *testing.T) {
	c := startNode(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deep := strings.Repeat(`{"a":`, 9) + "1" + strings.Repeat("}", 9)
	for _, tt := range []struct {
		name   string
		req    *pb.PutRequest
		code   codes.Code
		reason string
	}{
		{"bad collection", &pb.PutRequest{Collection: "-x", Id: "1", Body: js(`{}`)}, codes.InvalidArgument, "invalid_collection"},
		{"bad id", &pb.PutRequest{Collection: "c", Id: "a b", Body: js(`{}`)}, codes.InvalidArgument, "invalid_id"},
		{"not JSON", &pb.PutRequest{Collection: "c", Id: "1", Body: js(`{"a":`)}, codes.InvalidArgument, "invalid_json"},
		{"empty JSON", &pb.PutRequest{Collection: "c", Id: "1", Body: js(``)}, codes.InvalidArgument, "invalid_json"},
		{"too deep", &pb.PutRequest{Collection: "c", Id: "1", Body: js(deep)}, codes.InvalidArgument, "json_too_deep"},
		{"not an object", &pb.PutRequest{Collection: "c", Id: "1", Body: js(`[1]`)}, codes.InvalidArgument, "invalid_document"},
		{"no document", &pb.PutRequest{Collection: "c", Id: "1"}, codes.InvalidArgument, "invalid_document"},
		{"bad idempotency key", &pb.PutRequest{Collection: "c", Id: "1", Body: js(`{}`), IdempotencyKey: "é"}, codes.InvalidArgument, "invalid_argument"},
		{"bad sibling id", &pb.PutRequest{Collection: "c", Id: "1", Body: js(`{}`), Resolves: []string{"dc1"}}, codes.InvalidArgument, "invalid_argument"},
	} {
		_, err := c.docs.Put(ctx, tt.req)
		wantErr(t, tt.name, err, tt.code, tt.reason)
	}
	// Over the body limit: grpc-go refuses the message before our code sees it.
	_, err := c.docs.Put(ctx, &pb.PutRequest{Collection: "c", Id: "1", Body: js(`{"s":"` + strings.Repeat("x", 5000) + `"}`)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("too large: %v", err)
	}
	_, err = c.docs.Get(ctx, &pb.GetRequest{Collection: "c", Id: "1", Consistency: 9})
	wantErr(t, "unknown consistency", err, codes.InvalidArgument, "invalid_argument")
	_, err = c.docs.Query(ctx, &pb.QueryRequest{Collection: "c", Filter: "doc.a ==\n  )"})
	if md := wantErr(t, "bad filter", err, codes.InvalidArgument, "invalid_filter"); md["line"] != "2" || md["column"] == "" {
		t.Fatalf("bad filter metadata: %v", md)
	}
	_, err = c.docs.Query(ctx, &pb.QueryRequest{Collection: "c", Limit: 5000})
	wantErr(t, "limit", err, codes.InvalidArgument, "invalid_argument")
	_, err = c.docs.Batch(ctx, &pb.BatchRequest{Writes: []*pb.BatchWrite{{Collection: "c", Id: "1"}}})
	wantErr(t, "batch op", err, codes.InvalidArgument, "invalid_argument")
	_, err = c.docs.Batch(ctx, &pb.BatchRequest{})
	wantErr(t, "empty batch", err, codes.InvalidArgument, "invalid_argument")
	_, err = c.docs.Batch(ctx, &pb.BatchRequest{Writes: []*pb.BatchWrite{{Op: pb.Op_OP_PUT, Collection: "c", Id: "1",
		Body: &pb.BatchWrite_DocJson{DocJson: []byte("{")}}}})
	wantErr(t, "batch JSON", err, codes.InvalidArgument, "invalid_json")
	// Nothing above wrote anything.
	if cols, err := c.docs.ListCollections(ctx, &pb.ListCollectionsRequest{}); err != nil || len(cols.Collections) != 0 {
		t.Fatalf("collections after bad input: %v %v", cols, err)
	}
}

func TestBatchAndQueryOverGRPC(t *testing.T) {
	c := startNode(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var writes []*pb.BatchWrite
	for i := range 25 {
		writes = append(writes, &pb.BatchWrite{Op: pb.Op_OP_PUT, Collection: "items", Id: fmt.Sprintf("i%02d", i),
			Body: &pb.BatchWrite_DocJson{DocJson: fmt.Appendf(nil, `{"n":%d,"tag":"t%d"}`, i, i%3)}})
	}
	req := &pb.BatchRequest{Writes: writes, IdempotencyKey: "load-1"}
	res, err := c.docs.Batch(ctx, req)
	if err != nil || len(res.Results) != 25 {
		t.Fatalf("batch: %v %v", res, err)
	}
	for i, r := range res.Results {
		if r.GetOk().GetVersion() != 1 || !r.GetOk().Created || r.GetOk().Id != writes[i].Id {
			t.Fatalf("batch[%d] = %v", i, r)
		}
	}
	again, err := c.docs.Batch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Results {
		if !proto(r.GetOk().GetPosition(), res.Results[i].GetOk().GetPosition()) {
			t.Fatalf("idempotent batch[%d] = %v, first %v", i, r, res.Results[i])
		}
	}
	// A failed condition fails its write and the other writes of its shard.
	mixed, err := c.docs.Batch(ctx, &pb.BatchRequest{Writes: []*pb.BatchWrite{
		{Op: pb.Op_OP_PATCH, Collection: "items", Id: "i00", IfMatch: u64(7), Body: &pb.BatchWrite_Doc{Doc: &structpb.Struct{}}},
		{Op: pb.Op_OP_DELETE, Collection: "items", Id: "i01"},
		{Op: pb.Op_OP_PUT, Collection: "items", Id: "new", IfNoneMatch: true, Body: &pb.BatchWrite_DocJson{DocJson: []byte(`{"n":100}`)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := mixed.Results[0].GetError()
	if e == nil || e.Code != "precondition_failed" || codes.Code(e.GrpcCode) != codes.FailedPrecondition || e.CurrentVersion == nil || *e.CurrentVersion != 1 {
		t.Fatalf("failed item: %v", mixed.Results[0])
	}
	for _, r := range mixed.Results[1:] {
		if r.GetOk() == nil && (r.GetError().GetCode() != "batch_aborted" || codes.Code(r.GetError().GrpcCode) != codes.Aborted) {
			t.Fatalf("other item: %v", r)
		}
	}

	// Pages through a cursor: every match once, in order.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		q, err := c.docs.Query(ctx, &pb.QueryRequest{Collection: "items", Filter: "doc.n >= 5 && doc.n < 25",
			Sort: []*pb.SortField{{Field: "n", Desc: true}}, Limit: 7, Cursor: cursor, Fields: []string{"n"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range q.Docs {
			got = append(got, d.Id)
			if !strings.HasPrefix(string(d.DocJson), `{"n":`) || strings.Contains(string(d.DocJson), "tag") {
				t.Fatalf("projection: %s", d.DocJson)
			}
		}
		if cursor = q.NextCursor; cursor == "" {
			break
		}
		if page > 5 {
			t.Fatal("cursor does not end")
		}
	}
	var want []string
	for i := 24; i >= 5; i-- {
		want = append(want, fmt.Sprintf("i%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages: %v\nwant %v", got, want)
	}
	q, err := c.docs.Query(ctx, &pb.QueryRequest{Collection: "items", Filter: `doc.tag == "t1"`, Count: true, Explain: true})
	if err != nil || q.Count == nil || len(q.Plan) != 2 || len(q.Docs) != 0 {
		t.Fatalf("count: %v %v", q, err)
	}
	// i01 was deleted by the mixed batch unless it shares i00's shard.
	want01 := int64(8)
	if _, err := c.docs.Get(ctx, &pb.GetRequest{Collection: "items", Id: "i01"}); status.Code(err) == codes.NotFound {
		want01 = 7
	}
	if *q.Count != want01 {
		t.Fatalf("count %d, want %d", *q.Count, want01)
	}
}

func TestHealthReflectionAndMetrics(t *testing.T) {
	c := startNode(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(c.conn)
	for _, svc := range []string{"", "aerolith.v1.DocumentService", "aerolith.v1.ChangeService"} {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, r, err)
		}
	}

	rc, err := reflectionpb.NewServerReflectionClient(c.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{"aerolith.v1.DocumentService", "aerolith.v1.ChangeService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "aerolith.v1.ChangeService"}}); err != nil {
		t.Fatal(err)
	}
	if res, err = rc.Recv(); err != nil || len(res.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("describe: %v %v", res, err)
	}
	rc.CloseSend()

	if _, err := c.docs.Get(ctx, &pb.GetRequest{Collection: "c", Id: "missing"}); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + c.node.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`aerolith_grpc_requests_total{code="NotFound",method="/aerolith.v1.DocumentService/Get"} 1`,
		`aerolith_grpc_request_seconds_count{method="/grpc.health.v1.Health/Check"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

// recvUntil collects a stream's messages until stop says so.
func recvUntil(t *testing.T, st pb.ChangeService_WatchClient, stop func(*pb.WatchResponse) bool) []*pb.WatchResponse {
	t.Helper()
	var out []*pb.WatchResponse
	for {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("recv after %d messages: %v", len(out), err)
		}
		if m.ResumeToken == "" {
			t.Fatalf("message without a token: %v", m)
		}
		out = append(out, m)
		if stop(m) {
			return out
		}
	}
}

func caughtUp(m *pb.WatchResponse) bool { return m.GetCaughtUp() != nil }

func TestWatchFilterStartsAndErrors(t *testing.T) {
	c := startNode(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(coll, id, doc string) *pb.WriteResult {
		t.Helper()
		r, err := c.docs.Put(ctx, &pb.PutRequest{Collection: coll, Id: id, Body: js(doc)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	put("a", "1", `{"n":1}`)
	created := put("a", "2", `{"n":10}`)
	put("b", "3", `{"n":10}`)
	patched, err := c.docs.Patch(ctx, &pb.PatchRequest{Collection: "a", Id: "2", Body: &pb.PatchRequest_PatchJson{PatchJson: []byte(`{"n":11}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.docs.Delete(ctx, &pb.DeleteRequest{Collection: "a", Id: "1"}); err != nil {
		t.Fatal(err)
	}

	st, err := c.changes.Watch(ctx, &pb.WatchRequest{Collections: []string{"a"}, Filter: "doc.n > 5", IncludeBefore: true, IncludeAfter: true,
		Start: &pb.WatchRequest_StartPoint{StartPoint: pb.StartPoint_START_POINT_BEGINNING}})
	if err != nil {
		t.Fatal(err)
	}
	ms := recvUntil(t, st, caughtUp)
	var evs []*pb.ChangeEvent
	for _, m := range ms {
		if e := m.GetEvent(); e != nil {
			evs = append(evs, e)
		}
	}
	if len(evs) != 2 {
		t.Fatalf("events: %v", ms)
	}
	e0, e1 := evs[0], evs[1]
	if e0.Op != pb.ChangeOp_CHANGE_OP_CREATE || e0.Type != "aerolith.document.created" || string(e0.AfterJson) != `{"n":10}` || len(e0.BeforeJson) != 0 ||
		!proto(e0.Position, created.Position) || e0.EventId != fmt.Sprintf("dc1-%d-%d", created.Position.Shard, created.Position.Index) ||
		e0.Source.GetShard() != created.Position.Shard || e0.Source.GetDc() != "dc1" || !e0.Time.AsTime().Equal(created.Ts.AsTime()) {
		t.Fatalf("create event: %v (write %v)", e0, created)
	}
	if e1.Op != pb.ChangeOp_CHANGE_OP_UPDATE || string(e1.BeforeJson) != `{"n":10}` || string(e1.AfterJson) != `{"n":11}` ||
		e1.Version != 2 || !proto(e1.Position, patched.Position) || e1.Principal != "anonymous" {
		t.Fatalf("update event: %v", e1)
	}
	// Local writes: the origin is this datacenter, and the vector clock counts its writes of
	// the document.
	if e0.Origin != "dc1" || e0.Clock["dc1"] != 1 || e1.Origin != "dc1" || e1.Clock["dc1"] != 2 || len(e1.Clock) != 1 {
		t.Fatalf("origin and clock: %q %v, %q %v", e0.Origin, e0.Clock, e1.Origin, e1.Clock)
	}

	// From the epoch is from the beginning; from the far future is from now.
	st, err = c.changes.Watch(ctx, &pb.WatchRequest{Start: &pb.WatchRequest_StartTime{StartTime: timestamppb.New(time.Unix(0, 0))}})
	if err != nil {
		t.Fatal(err)
	}
	if ms := recvUntil(t, st, caughtUp); len(ms) != 6 {
		t.Fatalf("from epoch: %d messages, want 5 events and caught_up", len(ms))
	}
	st, err = c.changes.Watch(ctx, &pb.WatchRequest{Start: &pb.WatchRequest_StartTime{StartTime: timestamppb.New(time.Now().Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	ms = recvUntil(t, st, caughtUp)
	if len(ms) != 1 {
		t.Fatalf("from the future: %v", ms)
	}
	put("c", "9", `{"late":true}`)
	if ms = recvUntil(t, st, func(m *pb.WatchResponse) bool { return m.GetEvent() != nil }); ms[0].GetEvent().Collection != "c" {
		t.Fatalf("live event: %v", ms)
	}

	ahead := feed.Token{1: 1 << 40}.Encode()
	for _, tt := range []struct {
		name   string
		req    *pb.WatchRequest
		code   codes.Code
		reason string
	}{
		{"garbage token", &pb.WatchRequest{Start: &pb.WatchRequest_ResumeToken{ResumeToken: "!!"}}, codes.InvalidArgument, "invalid_token"},
		{"token ahead of the log", &pb.WatchRequest{Start: &pb.WatchRequest_ResumeToken{ResumeToken: ahead}}, codes.InvalidArgument, "invalid_token"},
		{"bad filter", &pb.WatchRequest{Filter: "doc.n >"}, codes.InvalidArgument, "invalid_filter"},
		{"bad collection", &pb.WatchRequest{Collections: []string{"a b"}}, codes.InvalidArgument, "invalid_collection"},
		{"bad start", &pb.WatchRequest{Start: &pb.WatchRequest_StartPoint{StartPoint: 7}}, codes.InvalidArgument, "invalid_argument"},
	} {
		st, err := c.changes.Watch(ctx, tt.req)
		if err == nil {
			_, err = st.Recv()
		}
		wantErr(t, tt.name, err, tt.code, tt.reason)
	}
}

// TestWatchResumesWithoutGapOrDuplicate cancels a stream again and again while writers
// keep writing, resuming each time from the last token received: per shard, the events
// received are exactly positions 1..head.
func TestWatchResumesWithoutGapOrDuplicate(t *testing.T) {
	c := startNode(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	const writers, perWriter = 4, 100
	var mu sync.Mutex
	heads := map[uint64]uint64{}
	writeErr := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r, err := c.docs.Put(ctx, &pb.PutRequest{Collection: "w", Id: fmt.Sprintf("d%d-%d", w, i%20), Body: js(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))})
				if err != nil {
					writeErr <- err
					return
				}
				mu.Lock()
				heads[r.Position.Shard] = max(heads[r.Position.Shard], r.Position.Index)
				mu.Unlock()
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	seen := map[uint64][]uint64{}
	complete := func() bool { // once the writers are done
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for s, h := range heads {
			if uint64(len(seen[s])) < h {
				return false
			}
			total += int(h)
		}
		return total == writers*perWriter
	}
	token, streams, cancelled, finished := "", 0, 0, false
	for !finished {
		// While the writers write, each stream is cancelled after a few events (or when
		// they finish); after that, one last stream reads until every event is in.
		writing := !isClosed(writersDone)
		if !writing {
			select {
			case err := <-writeErr:
				t.Fatal(err)
			default:
			}
		}
		req := &pb.WatchRequest{Collections: []string{"w"}}
		if token == "" {
			req.Start = &pb.WatchRequest_StartPoint{StartPoint: pb.StartPoint_START_POINT_BEGINNING}
		} else {
			req.Start = &pb.WatchRequest_ResumeToken{ResumeToken: token}
		}
		sctx, scancel := context.WithCancel(ctx)
		if writing {
			go func() {
				select {
				case <-writersDone:
					scancel()
				case <-sctx.Done():
				}
			}()
		}
		st, err := c.changes.Watch(sctx, req)
		if err != nil {
			t.Fatal(err)
		}
		streams++
		budget := 23 + 7*streams
		for got := 0; ; {
			m, err := st.Recv()
			if err != nil {
				if writing && sctx.Err() != nil {
					break // the writers finished
				}
				t.Fatalf("stream %d: %v", streams, err)
			}
			token = m.ResumeToken
			if e := m.GetEvent(); e != nil {
				seen[e.Position.Shard] = append(seen[e.Position.Shard], e.Position.Index)
				got++
			}
			if !writing && complete() {
				finished = true
				break
			}
			if writing && got >= budget {
				cancelled++
				break
			}
		}
		scancel()
	}
	if cancelled < 3 {
		t.Fatalf("only %d streams cancelled while writes went on", cancelled)
	}
	for s, h := range heads {
		want := make([]uint64, h)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if !slices.Equal(seen[s], want) {
			t.Fatalf("shard %d: received %d positions %v, want 1..%d", s, len(seen[s]), seen[s], h)
		}
	}
	t.Logf("%d events over %d streams (%d cancelled during writes), heads %v", writers*perWriter, streams, cancelled, heads)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWatchEndsUnavailableWhenTheNodeCloses(t *testing.T) {
	c := startNode(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.changes.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first := recvUntil(t, st, caughtUp)[0]
	hw, err := healthpb.NewHealthClient(c.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := hw.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch: %v %v", r, err)
	}

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- c.node.Close() }()
	_, err = st.Recv()
	md := wantErr(t, "watch on close", err, codes.Unavailable, "unavailable")
	if md["resume_token"] != first.ResumeToken || !strings.Contains(status.Convert(err).Message(), "resume") {
		t.Fatalf("watch on close: %v, metadata %v", err, md)
	}
	// Open health watches do not hold the shutdown up either.
	for {
		r, err := hw.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("health watch on close: %v", err)
			}
			break
		}
		if r.Status == healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health still SERVING during shutdown")
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("close took %v", d)
	}
	// No goroutine of the gateway outlives it.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "aerolith/gateway/grpc.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway goroutines left after Close:\n%s", stacks)
		}
		<-tick.C
	}
}

func TestNodeWithGRPCOff(t *testing.T) {
	if err := (node.Config{GRPCAddr: "nonsense"}).Validate(); err == nil || !strings.Contains(err.Error(), "grpc address") {
		t.Fatalf("Validate(bad grpc address) = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), Shards: 1, GRPCAddr: node.GRPCOff})
	if err != nil {
		t.Fatal(err)
	}
	if a := n.GRPCAddr(); a != "" {
		t.Fatalf("gRPC is off but listens on %q", a)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
