package grpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/query"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStatusOfDomainErrors checks the statuses clients see for errors the end-to-end tests
// cannot provoke on a healthy single node (token_too_old needs an archive tier;
// unavailable and indeterminate need a failing log).
func TestStatusOfDomainErrors(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	for _, tt := range []struct {
		err    error
		code   codes.Code
		reason string
		meta   map[string]string
	}{
		{&feed.TooOldError{Shard: 3, Earliest: 41}, codes.OutOfRange, "token_too_old", map[string]string{"shard": "3", "earliest": "41"}},
		{fmt.Errorf("%w: timeout", db.ErrIndeterminate), codes.DeadlineExceeded, "indeterminate", nil},
		{fmt.Errorf("%w: no leader", db.ErrUnavailable), codes.Unavailable, "unavailable", nil},
		{&db.PreconditionError{Current: 0}, codes.FailedPrecondition, "precondition_failed", map[string]string{"current_version": "0"}},
		{db.ErrIndexExists, codes.AlreadyExists, "index_exists", nil},
		{db.ErrAborted, codes.Aborted, "batch_aborted", nil},
		{fmt.Errorf("%w: cost", query.ErrTooExpensive), codes.InvalidArgument, "filter_too_expensive", nil},
		{gateway.ErrBodyTooLarge, codes.ResourceExhausted, "body_too_large", nil},
		{errors.New("disk on fire"), codes.Internal, "internal", nil},
	} {
		err := s.status(context.Background(), "Test", tt.err, nil)
		st := status.Convert(err)
		if st.Code() != tt.code {
			t.Errorf("%v: code %v, want %v", tt.err, st.Code(), tt.code)
			continue
		}
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			info, _ = d.(*errdetails.ErrorInfo)
		}
		if info == nil || info.Reason != tt.reason || info.Domain != ErrorDomain || !maps.Equal(info.Metadata, tt.meta) {
			t.Errorf("%v: details %v, want reason %q metadata %v", tt.err, info, tt.reason, tt.meta)
		}
		if tt.code == codes.Internal && (strings.Contains(st.Message(), "fire") || !strings.Contains(st.Message(), "request id")) {
			t.Errorf("internal error message %q", st.Message())
		}
	}
	// A call whose context ended reports that, not an internal error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c := status.Code(s.status(ctx, "Test", context.Canceled, nil)); c != codes.Canceled {
		t.Errorf("cancelled call: %v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Limits: gateway.Limits{MaxBodyBytes: -1}, HealthEvery: -1}.Validate()
	for _, want := range []string{"store is required", "max body bytes", "health interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}
