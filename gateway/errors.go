package gateway

import (
	"errors"
	"net/http"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
	"google.golang.org/grpc/codes"
)

// Codes that do not come from a domain error.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeJSONTooDeep      = "json_too_deep"
	CodeBodyTooLarge     = "body_too_large"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"

	// Change streams (gateway/ws).
	CodeUpgradeRequired       = "upgrade_required"
	CodeTooManyConnections    = "too_many_connections"
	CodeTooManySubscriptions  = "too_many_subscriptions"
	CodeMessageTooLarge       = "message_too_large"
	CodeUnknownSubscription   = "unknown_subscription"
	CodeDuplicateSubscription = "duplicate_subscription"
)

// ErrorInfo is what a client sees of an error.
type ErrorInfo struct {
	HTTP    int
	GRPC    codes.Code
	Code    string
	Message string
	// CurrentVersion is set for precondition failures (0 when the document is absent).
	CurrentVersion *uint64
	// Line and Column locate a filter compile error (1-based).
	Line, Column int
	// Earliest is, for token_too_old, the oldest position the shard still serves.
	Earliest *log.Position
}

// table is the one map from domain errors to what clients see: the HTTP status, the gRPC
// code and the stable code string (which gRPC carries as the google.rpc.ErrorInfo reason).
// gRPC choices that are not obvious: precondition_failed is FAILED_PRECONDITION (as HTTP
// 412); idempotency_key_reused and index_exists are ALREADY_EXISTS (the key or the name
// is taken); indeterminate is DEADLINE_EXCEEDED, whose documented meaning is exactly ours
// ("the operation may have completed") and which a client whose own deadline expires sees
// anyway; filter_too_expensive is INVALID_ARGUMENT (retrying the same filter cannot help,
// unlike RESOURCE_EXHAUSTED); token_too_old is OUT_OF_RANGE (the position is before what
// the node serves); replication_pending (a sync-mode write committed locally that the
// replication log has not acknowledged) is DEADLINE_EXCEEDED like indeterminate, but its
// outcome is known: committed; replication_unavailable is FAILED_PRECONDITION (sync mode
// on a node without a replication log: retrying cannot help).
var table = []struct {
	err  error
	http int
	grpc codes.Code
	code string
}{
	{ErrInvalidJSON, http.StatusBadRequest, codes.InvalidArgument, CodeInvalidJSON},
	{ErrJSONTooDeep, http.StatusBadRequest, codes.InvalidArgument, CodeJSONTooDeep},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, CodeBodyTooLarge},
	// First among db errors: it wraps the replication log's own error, and it must say the
	// write is committed whatever that error is.
	{db.ErrNotShipped, http.StatusGatewayTimeout, codes.DeadlineExceeded, "replication_pending"},
	{db.ErrReplicationUnavailable, http.StatusServiceUnavailable, codes.FailedPrecondition, "replication_unavailable"},
	{db.ErrSiblingsUnresolved, http.StatusConflict, codes.FailedPrecondition, "siblings_unresolved"},
	{db.ErrNotFound, http.StatusNotFound, codes.NotFound, "not_found"},
	{db.ErrInvalidCollection, http.StatusBadRequest, codes.InvalidArgument, "invalid_collection"},
	{db.ErrInvalidID, http.StatusBadRequest, codes.InvalidArgument, "invalid_id"},
	{db.ErrInvalidDocument, http.StatusBadRequest, codes.InvalidArgument, "invalid_document"},
	{db.ErrInvalidArgument, http.StatusBadRequest, codes.InvalidArgument, "invalid_argument"},
	{db.ErrPrecondition, http.StatusPreconditionFailed, codes.FailedPrecondition, "precondition_failed"},
	{db.ErrIdempotencyKeyReused, http.StatusUnprocessableEntity, codes.AlreadyExists, "idempotency_key_reused"},
	{db.ErrAborted, http.StatusConflict, codes.Aborted, "batch_aborted"},
	{db.ErrUnavailable, http.StatusServiceUnavailable, codes.Unavailable, "unavailable"},
	{db.ErrNotHosted, http.StatusServiceUnavailable, codes.Unavailable, "not_hosted"},
	{db.ErrIndeterminate, http.StatusGatewayTimeout, codes.DeadlineExceeded, "indeterminate"},
	{db.ErrIndexExists, http.StatusConflict, codes.AlreadyExists, "index_exists"},
	{db.ErrMembership, http.StatusConflict, codes.FailedPrecondition, "membership_refused"},
	{query.ErrCompile, http.StatusBadRequest, codes.InvalidArgument, "invalid_filter"},
	{query.ErrTooExpensive, http.StatusBadRequest, codes.InvalidArgument, "filter_too_expensive"},
	{query.ErrInvalid, http.StatusBadRequest, codes.InvalidArgument, "invalid_argument"},
	{feed.ErrInvalidToken, http.StatusBadRequest, codes.InvalidArgument, "invalid_token"},
	{feed.ErrTokenTooOld, http.StatusGone, codes.OutOfRange, "token_too_old"},
	{feed.ErrInvalidSpec, http.StatusBadRequest, codes.InvalidArgument, "invalid_argument"},
}

// Errors of request bodies, raised by the gateways themselves (gateway/grpc; gateway/rest
// reports the same codes through its own checks).
var (
	ErrInvalidJSON  = errors.New("gateway: invalid JSON")
	ErrJSONTooDeep  = errors.New("gateway: JSON too deep")
	ErrBodyTooLarge = errors.New("gateway: body too large")
)

var messages = map[string]string{
	"indeterminate": "the write's outcome is unknown: it may or may not have been applied; retry with the same Idempotency-Key",
	"unavailable":   "the node cannot serve this now; retry",
}

// Lookup maps err to what the client sees. Errors not in the table are internal: the
// caller logs them and the client sees only CodeInternal.
func Lookup(err error) ErrorInfo {
	for _, e := range table {
		if errors.Is(err, e.err) {
			info := ErrorInfo{HTTP: e.http, GRPC: e.grpc, Code: e.code, Message: err.Error()}
			if m, ok := messages[e.code]; ok {
				info.Message = m
			}
			var pe *db.PreconditionError
			if errors.As(err, &pe) {
				v := pe.Current
				info.CurrentVersion = &v
			}
			var ce *query.CompileError
			if errors.As(err, &ce) {
				info.Line, info.Column = ce.Line, ce.Column
			}
			var te *feed.TooOldError
			if errors.As(err, &te) {
				info.Earliest = &log.Position{Shard: te.Shard, Index: te.Earliest}
			}
			return info
		}
	}
	return ErrorInfo{HTTP: http.StatusInternalServerError, GRPC: codes.Internal, Code: CodeInternal, Message: "internal error"}
}
