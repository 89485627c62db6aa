// Package grpc is the gRPC gateway: it translates the aerolith.v1 services (proto/aerolith/v1,
// generated into aerolithv1) into db calls and their results and errors into messages and
// statuses, nothing more. DocumentService has the semantics of the REST API (docs/api.md);
// ChangeService.Watch streams the change feed (package feed). The server also offers the
// standard grpc.health.v1 health service and server reflection, so grpcurl can list,
// describe and call everything.
//
// Documents travel as JSON bytes (see proto/aerolith/v1/types.proto for why); requests may
// send a google.protobuf.Struct instead, which is converted to JSON once.
//
// Errors: every failure is mapped by gateway.Lookup (the one table) to a status code and
// carries a google.rpc.ErrorInfo detail with domain "aerolith" and the stable error code
// as its reason; metadata adds current_version, line/column, shard/earliest or
// resume_token where they apply. Internal errors are logged with a request id and the
// client sees only that id.
//
// Limits: a request message over Limits.MaxBodyBytes is refused by grpc-go with
// RESOURCE_EXHAUSTED (before our code runs, so without details); documents nested deeper
// than Limits.MaxJSONDepth get INVALID_ARGUMENT json_too_deep, invalid JSON invalid_json.
// The principal of a call is gateway.Authenticate of its "authorization" metadata.
//
// Lifecycle and goroutines: New builds the server and starts the one goroutine it owns
// besides grpc-go's: the health loop, which sets every service SERVING or NOT_SERVING from
// Store.Ready once a second. Serve serves one listener until Shutdown, which every New
// must be paired with. Shutdown marks every
// service NOT_SERVING, ends every open stream (Watch streams end with UNAVAILABLE and the
// last resume token they sent, so clients resume elsewhere), lets unary calls finish until
// its context ends, then stops hard. Shutdown is idempotent; handlers run concurrently, as
// grpc-go calls them.
package grpc
