// Package gateway holds what every client protocol shares: the one table that maps domain
// errors to an HTTP status and a stable error code, the limits on requests, and the one
// place that establishes who the caller is. Its sub-packages (rest, and later grpc, ws,
// graphql) translate their protocol to db calls and nothing more; only they import fiber
// or grpc.
package gateway
