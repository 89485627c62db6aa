package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	pb "github.com/aerolithsdb/aerolith/gateway/grpc/aerolithv1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcClient speaks the aerolith.v1 gRPC API (proto/aerolith/v1) to one node over one
// HTTP/2 connection, on which every worker's calls are multiplexed. It is a Client, and
// the ChangeService client of the suites that watch (changefeed).
type grpcClient struct {
	target  string
	conn    *grpc.ClientConn
	docs    pb.DocumentServiceClient
	changes pb.ChangeServiceClient
	health  healthpb.HealthClient
	read    pb.Consistency
}

// errorDomain is the domain of the google.rpc.ErrorInfo the server attaches to every error
// (gateway/grpc.ErrorDomain); its reason is the stable error code of the REST API.
const errorDomain = "aerolith"

// newGRPCClient returns a client of the node whose gRPC gateway is at target (host:port).
// No connection is made until the first call. consistency is as for newRESTClient.
func newGRPCClient(target, consistency string) (*grpcClient, error) {
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("%w: grpc target %q: %v", ErrInvalidConfig, target, err)
	}
	c := &grpcClient{target: target, conn: conn, docs: pb.NewDocumentServiceClient(conn),
		changes: pb.NewChangeServiceClient(conn), health: healthpb.NewHealthClient(conn)}
	if consistency == "local" {
		c.read = pb.Consistency_CONSISTENCY_LOCAL
	}
	return c, nil
}

// Close closes the connection.
func (c *grpcClient) Close() error { return c.conn.Close() }

func (c *grpcClient) Put(ctx context.Context, coll, id string, doc []byte, createOnly bool) (int64, error) {
	r, err := c.docs.Put(ctx, &pb.PutRequest{Collection: coll, Id: id, Body: &pb.PutRequest_DocJson{DocJson: doc}, IfNoneMatch: createOnly})
	return writeVersion(r, err)
}

func (c *grpcClient) Patch(ctx context.Context, coll, id string, patch []byte) (int64, error) {
	r, err := c.docs.Patch(ctx, &pb.PatchRequest{Collection: coll, Id: id, Body: &pb.PatchRequest_PatchJson{PatchJson: patch}})
	return writeVersion(r, err)
}

func writeVersion(r *pb.WriteResult, err error) (int64, error) {
	if err != nil {
		return 0, grpcError(err)
	}
	if r.GetVersion() < 1 {
		return 0, fmt.Errorf("%w: write result without a version: %v", ErrBadResponse, r)
	}
	return int64(r.Version), nil
}

func (c *grpcClient) Get(ctx context.Context, coll, id string, decode bool) (*Document, error) {
	d, err := c.docs.Get(ctx, &pb.GetRequest{Collection: coll, Id: id, Consistency: c.read})
	if err != nil {
		return nil, grpcError(err)
	}
	if !decode {
		return nil, nil
	}
	var fields map[string]string
	if err := json.Unmarshal(d.DocJson, &fields); err != nil {
		return nil, &VerifyError{Kind: VerifyBadJSON, ID: coll + "/" + id, Detail: err.Error()}
	}
	return &Document{ID: d.Id, Version: int64(d.Version), Fields: fields}, nil
}

func (c *grpcClient) Batch(ctx context.Context, writes []BatchWrite) ([]BatchResult, error) {
	req := &pb.BatchRequest{Writes: make([]*pb.BatchWrite, len(writes))}
	for i, w := range writes {
		req.Writes[i] = &pb.BatchWrite{Op: pb.Op_OP_PUT, Collection: w.Collection, Id: w.ID,
			Body: &pb.BatchWrite_DocJson{DocJson: w.Doc}, IfNoneMatch: w.IfNoneMatch}
	}
	resp, err := c.docs.Batch(ctx, req)
	if err != nil {
		return nil, grpcError(err)
	}
	if len(resp.Results) != len(writes) {
		return nil, fmt.Errorf("%w: batch of %d: %d results", ErrBadResponse, len(writes), len(resp.Results))
	}
	out := make([]BatchResult, len(writes))
	for i, r := range resp.Results {
		switch o := r.Outcome.(type) {
		case *pb.BatchResult_Ok:
			out[i] = BatchResult{Status: 200, Version: int64(o.Ok.GetVersion())}
			if o.Ok.GetCreated() {
				out[i].Status = 201
			}
		case *pb.BatchResult_Error:
			out[i] = BatchResult{Code: o.Error.GetCode()}
			if out[i].Code == "" {
				out[i].Code = grpcCodeName(codes.Code(o.Error.GetGrpcCode()))
			}
		default:
			return nil, fmt.Errorf("%w: batch of %d: result %d has no outcome", ErrBadResponse, len(writes), i)
		}
	}
	return out, nil
}

// Ready polls the standard health service until the server reports SERVING (every shard
// has a leader) or ctx ends.
func (c *grpcClient) Ready(ctx context.Context) error {
	var last error
	wait := 50 * time.Millisecond
	for {
		r, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
		switch {
		case err != nil:
			last = grpcError(err)
		case r.Status != healthpb.HealthCheckResponse_SERVING:
			last = fmt.Errorf("health %s", r.Status)
		default:
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: grpc %s: %w (last: %v)", ErrNotReady, c.target, ctx.Err(), last)
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// grpcError turns a failed call's status into the errors the REST client returns, so
// that errorCode classifies both alike: the ErrorInfo reason is the stable code of an
// *APIError; a deadline or cancellation without one (the client's own) wraps the context
// error; any other status without a reason (transport failures, grpc-go's own limits) is
// an *APIError whose code errorCode reports as grpc_<code>.
func grpcError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Domain == errorDomain && ei.Reason != "" {
			return &APIError{GRPC: grpcStatusName(st.Code()), Code: ei.Reason, Message: st.Message()}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("bench: grpc: %s: %w", st.Message(), context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("bench: grpc: %s: %w", st.Message(), context.Canceled)
	}
	return &APIError{GRPC: grpcStatusName(st.Code()), Message: st.Message()}
}

// grpcStatusName is the canonical name of a status code ("UNAVAILABLE").
func grpcStatusName(c codes.Code) string {
	if n, ok := code.Code_name[int32(c)]; ok {
		return n
	}
	return "CODE_" + strconv.Itoa(int(c))
}

// grpcCodeName is the error code a status without a reason is counted under.
func grpcCodeName(c codes.Code) string { return "grpc_" + strings.ToLower(grpcStatusName(c)) }

// grpcTargets returns the gRPC addresses of p's nodes: Params.GRPCAddrs, or each of
// Params.Addrs with its port plus 2 (the server's default layout: HTTP 7070, raft 7071,
// gRPC 7072).
func grpcTargets(p Params) ([]string, error) {
	if len(p.GRPCAddrs) > 0 {
		return p.GRPCAddrs, nil
	}
	out := make([]string, 0, len(p.Addrs))
	for _, a := range p.Addrs {
		hp := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://"), "/")
		host, port, err := net.SplitHostPort(hp)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65533 {
			return nil, fmt.Errorf("%w: cannot derive a gRPC address from %q: give the gRPC addresses", ErrInvalidConfig, a)
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(n+2)))
	}
	return out, nil
}
