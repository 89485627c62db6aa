package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateDefaults(t *testing.T) {
	if err := (Params{Addrs: []string{"127.0.0.1:7070"}}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	p := Params{}.withDefaults()
	if p.Suite != "ycsb-a" || p.Clients != 16 || p.Duration != 30*time.Second || p.FieldCount != 10 || p.FieldLength != 100 || p.VerifyFraction != 0.1 {
		t.Fatalf("defaults %+v", p)
	}
	if p := (Params{Ops: 10}).withDefaults(); p.Duration != 0 || p.MaxDuration != time.Hour {
		t.Fatalf("ops-only run: duration %v max %v", p.Duration, p.MaxDuration)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := Params{
		Protocol:       "smoke",
		Clients:        -1,
		Rate:           -5,
		FieldLength:    8,
		Distribution:   "pareto",
		BatchSize:      5000,
		VerifyFraction: 2,
		Collection:     "-bad",
		SkipLoad:       false,
	}
	err := p.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"no target", "protocol", "clients", "rate", "field length", "distribution", "batch size", "verify fraction", "collection"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if err := (Params{Addrs: []string{"a:1"}, Protocol: ProtocolGRPC}).Validate(); err != nil {
		t.Fatalf("grpc: %v", err)
	}
	if err := (Params{Addrs: []string{"a"}, Protocol: ProtocolGRPC}).Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "gRPC") {
		t.Fatalf("grpc without a derivable address: %v", err)
	}
	if err := (Params{Addrs: []string{"a:1", "b:1"}, GRPCAddrs: []string{"a:2"}, Protocol: ProtocolGRPC}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("grpc addresses not one per node: %v", err)
	}
	if err := (Params{Addrs: []string{"a:1"}, SkipLoad: true}).Validate(); err == nil {
		t.Fatal("skip load without a collection accepted")
	}
}

func TestParamsJSONUsesDurationStrings(t *testing.T) {
	p := Params{Suite: "write", Duration: 90 * time.Second, Warmup: 1500 * time.Millisecond, Seed: 3}.withDefaults()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"duration":"1m30s"`) || !strings.Contains(string(b), `"warmup":"1.5s"`) {
		t.Fatalf("json %s", b)
	}
	var back Params
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Duration != p.Duration || back.Warmup != p.Warmup || back.OpTimeout != p.OpTimeout || back.Seed != 3 || back.Suite != "write" {
		t.Fatalf("round trip %+v", back)
	}
}

func TestErrorCodes(t *testing.T) {
	cases := map[string]error{
		"not_found":             &APIError{Status: 404, Code: "not_found"},
		"http_502":              &APIError{Status: 502},
		"verify_stale_version":  fmt.Errorf("wrapped: %w", &VerifyError{Kind: VerifyStaleVersion}),
		"timeout":               context.DeadlineExceeded,
		"connection_refused":    &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		"connection_reset":      syscall.ECONNRESET,
		"connection_closed":     io.ErrUnexpectedEOF,
		"bad_response":          fmt.Errorf("%w: x", ErrBadResponse),
		"transport":             errors.New("something else"),
		"verify_value_mismatch": &VerifyError{Kind: VerifyValueMismatch},
	}
	for want, err := range cases {
		if got := errorCode(err); got != want {
			t.Errorf("errorCode(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := DefaultRegistry()
	want := []string{"ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f", "write", "write-batch", "query", "changefeed", "xdc"}
	if strings.Join(r.Names(), ",") != strings.Join(want, ",") {
		t.Fatalf("names %v", r.Names())
	}
	if _, err := r.lookup("ycsb-z"); !errors.Is(err, ErrUnknownSuite) {
		t.Fatalf("lookup: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate suite accepted")
		}
	}()
	NewRegistry(writeSuite(), writeSuite())
}

func TestCPUModel(t *testing.T) {
	if got := cpuModel("testdata/cpuinfo"); got != "AMD EPYC 7B13 64-Core Processor" {
		t.Fatalf("cpu model %q", got)
	}
	if got := cpuModel("testdata/absent"); got != "unknown" {
		t.Fatalf("cpu model of a missing file %q", got)
	}
}

func TestGRPCTargets(t *testing.T) {
	tests := []struct {
		p    Params
		want string
	}{
		{Params{Addrs: []string{"127.0.0.1:7070", "http://10.0.0.2:8080/"}}, "127.0.0.1:7072,10.0.0.2:8082"},
		{Params{Addrs: []string{"[::1]:7070"}}, "[::1]:7072"},
		{Params{Addrs: []string{"a:7070"}, GRPCAddrs: []string{"b:9"}}, "b:9"},
	}
	for _, tt := range tests {
		got, err := grpcTargets(tt.p)
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("grpcTargets(%v) = %v, %v; want %s", tt.p.Addrs, got, err, tt.want)
		}
	}
	if _, err := grpcTargets(Params{Addrs: []string{"a:65535"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("port 65535 + 2 accepted: %v", err)
	}
}
