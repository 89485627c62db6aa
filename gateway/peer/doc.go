// Package peer carries the peer protocol between the nodes of a cluster over gRPC: the
// aerolith.peer.v1.Peer service (proto/aerolith/peer/v1, generated into peerv1). A node
// asked for a shard it holds no replica of calls, through a Client, a node that holds
// one, whose Server hands the call to its database. The operations, their arguments and
// results are the database's (db.ServePeer); this package moves them and their errors,
// nothing more.
//
// Where: the Server is served on each node's HTTP port (internal/connmux sends it the
// connections that open with the HTTP/2 preface), so a node's advertised HTTP address is
// also its peer address and nothing more needs configuring.
//
// Deadlines: a call carries its caller's deadline (gRPC's grpc-timeout); the serving node's
// context ends with it.
//
// Errors: an error the database answers with (a peercall.Error) travels as a status with
// a google.rpc.ErrorInfo detail (domain ErrorDomain, reason its kind) and comes back as
// the same peercall.Error. A call that never reached the node comes back wrapping
// peercall.ErrUnreachable: the Client tells it by whether gRPC put the call's headers on
// a connection (its stats handler sees the call's OutHeader). Any other failure leaves
// open whether the node served the call.
//
// Dead connections: the kernel watches each connection to a node (TCP_USER_TIMEOUT 1 s,
// keepalive probes after 5 s of silence), so a node that is gone or cut off loses it
// within seconds while a paused or busy one, whose kernel still acknowledges, keeps it.
//
// Lifecycle and goroutines: NewServer builds the server; until SetStore it answers every
// call unavailable (the node is starting). Serve serves one listener until Shutdown, which
// ends calls in flight (head long polls among them) and then stops. NewClient opens no
// connection: each node's is opened at its first call, kept, and redialled by grpc-go
// after a failure with a short backoff; Close closes them all.
package peer
