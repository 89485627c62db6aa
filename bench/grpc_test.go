package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGRPCErrorCodes: a gRPC failure is counted under the same code as its REST twin (the
// ErrorInfo reason), or a class of its own when the status has none.
func TestGRPCErrorCodes(t *testing.T) {
	withReason := func(c codes.Code, reason, domain string) error {
		st, err := status.New(c, "msg").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: domain})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	tests := []struct {
		err  error
		want string
	}{
		{withReason(codes.FailedPrecondition, "precondition_failed", errorDomain), "precondition_failed"},
		{withReason(codes.NotFound, "not_found", errorDomain), "not_found"},
		{withReason(codes.DeadlineExceeded, "indeterminate", errorDomain), "indeterminate"},
		{withReason(codes.Unavailable, "unavailable", errorDomain), "unavailable"},
		{withReason(codes.NotFound, "x", "other.domain"), "grpc_not_found"},
		{status.Error(codes.Unavailable, "connection refused"), "grpc_unavailable"},
		{status.Error(codes.ResourceExhausted, "message too large"), "grpc_resource_exhausted"},
		{status.Error(codes.DeadlineExceeded, "deadline"), "timeout"},
		{status.Error(codes.Canceled, "canceled"), "canceled"},
		{fmt.Errorf("plain"), "transport"},
	}
	for _, tt := range tests {
		if got := errorCode(grpcError(tt.err)); got != tt.want {
			t.Errorf("errorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	var api *APIError
	if err := grpcError(withReason(codes.NotFound, "not_found", errorDomain)); !errors.As(err, &api) || api.GRPC != "NOT_FOUND" || api.Code != "not_found" {
		t.Fatalf("not found: %#v", err)
	}
	if !errors.Is(grpcError(status.Error(codes.DeadlineExceeded, "")), context.DeadlineExceeded) {
		t.Fatal("deadline does not wrap context.DeadlineExceeded")
	}
}
