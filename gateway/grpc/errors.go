package grpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/aerolithsdb/aerolith/gateway"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo every error carries. Its Reason is
// the stable error code of docs/api.md ("not_found", "precondition_failed", ...), spelt as
// in the REST API so that clients of both switch on the same strings.
const ErrorDomain = "aerolith"

// lookup maps err through the one table; an internal error is logged with a request id and
// the client sees only the id.
func (s *Server) lookup(method string, err error) gateway.ErrorInfo {
	info := gateway.Lookup(err)
	if info.Code == gateway.CodeInternal {
		id := requestID()
		s.log.Error("internal error", "request_id", id, "method", method, "err", err)
		info.Message = "internal error; request id " + id
	}
	return info
}

// status turns err into the status the client sees. ctx is the call's: when it ended
// (the client cancelled or its deadline passed) the status says so.
func (s *Server) status(ctx context.Context, method string, err error, meta map[string]string) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return status.FromContextError(ctx.Err()).Err()
	}
	return toStatus(s.lookup(method, err), meta).Err()
}

// toStatus builds the status of info with an ErrorInfo detail; meta adds to its metadata.
func toStatus(info gateway.ErrorInfo, meta map[string]string) *status.Status {
	md := map[string]string{}
	if info.CurrentVersion != nil {
		md["current_version"] = strconv.FormatUint(*info.CurrentVersion, 10)
	}
	if info.Line > 0 {
		md["line"], md["column"] = strconv.Itoa(info.Line), strconv.Itoa(info.Column)
	}
	if info.Earliest != nil {
		md["shard"], md["earliest"] = strconv.FormatUint(info.Earliest.Shard, 10), strconv.FormatUint(info.Earliest.Index, 10)
	}
	for k, v := range meta {
		md[k] = v
	}
	st := status.New(info.GRPC, info.Message)
	if len(md) == 0 {
		md = nil
	}
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: info.Code, Domain: ErrorDomain, Metadata: md}); err == nil {
		st = d
	}
	return st
}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
