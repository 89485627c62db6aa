package gateway

import (
	"errors"
	"net/http"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
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
	Code    string
	Message string
	// CurrentVersion is set for precondition failures (0 when the document is absent).
	CurrentVersion *uint64
	// Line and Column locate a filter compile error (1-based).
	Line, Column int
	// Earliest is, for token_too_old, the oldest position the shard still serves.
	Earliest *log.Position
}

var table = []struct {
	err  error
	http int
	code string
}{
	{db.ErrNotFound, http.StatusNotFound, "not_found"},
	{db.ErrInvalidCollection, http.StatusBadRequest, "invalid_collection"},
	{db.ErrInvalidID, http.StatusBadRequest, "invalid_id"},
	{db.ErrInvalidDocument, http.StatusBadRequest, "invalid_document"},
	{db.ErrInvalidArgument, http.StatusBadRequest, "invalid_argument"},
	{db.ErrPrecondition, http.StatusPreconditionFailed, "precondition_failed"},
	{db.ErrIdempotencyKeyReused, http.StatusUnprocessableEntity, "idempotency_key_reused"},
	{db.ErrAborted, http.StatusConflict, "batch_aborted"},
	{db.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{db.ErrIndeterminate, http.StatusGatewayTimeout, "indeterminate"},
	{db.ErrIndexExists, http.StatusConflict, "index_exists"},
	{query.ErrCompile, http.StatusBadRequest, "invalid_filter"},
	{query.ErrTooExpensive, http.StatusBadRequest, "filter_too_expensive"},
	{query.ErrInvalid, http.StatusBadRequest, "invalid_argument"},
	{feed.ErrInvalidToken, http.StatusBadRequest, "invalid_token"},
	{feed.ErrTokenTooOld, http.StatusGone, "token_too_old"},
	{feed.ErrInvalidSpec, http.StatusBadRequest, "invalid_argument"},
}

var messages = map[string]string{
	"indeterminate": "the write's outcome is unknown: it may or may not have been applied; retry with the same Idempotency-Key",
	"unavailable":   "the node cannot serve this now; retry",
}

// Lookup maps err to what the client sees. Errors not in the table are internal: the
// caller logs them and the client sees only CodeInternal.
func Lookup(err error) ErrorInfo {
	for _, e := range table {
		if errors.Is(err, e.err) {
			info := ErrorInfo{HTTP: e.http, Code: e.code, Message: err.Error()}
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
	return ErrorInfo{HTTP: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}
