package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Sentinel errors of the bench package.
var (
	// ErrUnknownSuite: no suite of that name in the registry.
	ErrUnknownSuite = errors.New("bench: unknown suite")
	// ErrProtocolUnsupported: the suite cannot run over the requested client protocol.
	ErrProtocolUnsupported = errors.New("bench: protocol not supported")
	// ErrInvalidConfig wraps every Config.Validate failure.
	ErrInvalidConfig = errors.New("bench: invalid config")
	// ErrNotReady: the target did not become ready before the deadline.
	ErrNotReady = errors.New("bench: target not ready")
	// ErrBadResponse: the server answered with something the REST contract does not allow.
	ErrBadResponse = errors.New("bench: bad response")
	// ErrResultsSchema: a results file is not one this version can read.
	ErrResultsSchema = errors.New("bench: unsupported results file")
)

// APIError is an error answer from the server: its HTTP status (REST) or gRPC status
// code name (gRPC), and its stable error code (the JSON error code, or the reason of the
// status's ErrorInfo; empty when the answer had none).
type APIError struct {
	Status  int    // REST: the HTTP status
	GRPC    string // gRPC: the status code's name ("NOT_FOUND")
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.GRPC != "" {
		return fmt.Sprintf("bench: server answered %s %s: %s", e.GRPC, e.Code, e.Message)
	}
	return fmt.Sprintf("bench: server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Kinds of verification failure (VerifyError.Kind); each is reported as error code
// "verify_<kind>".
const (
	VerifyValueMismatch = "value_mismatch" // a value does not match its tag, id or field
	VerifyMissingField  = "missing_field"  // fields missing or extra
	VerifyStaleVersion  = "stale_version"  // older than a write acknowledged before the read began
	VerifyWrongID       = "wrong_id"       // the answer is for another document
	VerifyMissing       = "missing"        // a document whose write was acknowledged is not found
	VerifyBadJSON       = "bad_json"       // the body does not decode
	VerifyWrongAnswer   = "wrong_answer"   // a query's answer is not what the loaded data gives
	// Change streams (the changefeed suite): every subscriber must receive every
	// acknowledged write exactly once.
	VerifyMissingEvent    = "missing_event"    // an acknowledged write never reached a subscriber
	VerifyDuplicateEvent  = "duplicate_event"  // a subscriber received a write twice
	VerifyUnexpectedEvent = "unexpected_event" // an event this run did not write, or one that does not decode
)

// VerifyError reports a read whose answer differs from what was written.
type VerifyError struct {
	Kind   string
	ID     string
	Detail string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("bench: verify %s: %s: %s", e.ID, e.Kind, e.Detail)
}

// errorCode maps an operation's error to the code it is counted under: the server's stable
// code, verify_<kind>, or a transport class.
func errorCode(err error) string {
	var api *APIError
	var ver *VerifyError
	var nerr net.Error
	switch {
	case errors.As(err, &ver):
		return "verify_" + ver.Kind
	case errors.As(err, &api):
		if api.Code != "" {
			return api.Code
		}
		if api.GRPC != "" {
			return "grpc_" + strings.ToLower(api.GRPC)
		}
		return "http_" + strconv.Itoa(api.Status)
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	default:
		return "transport"
	}
}
