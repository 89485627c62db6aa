// Package connmux serves two protocols on one port. A Mux takes the connections of one
// listener and hands each to one of two listeners by its first bytes: a connection that
// opens with the HTTP/2 client preface (gRPC, which speaks HTTP/2 from its first byte)
// to HTTP2, every other one (HTTP/1.x) to HTTP1. A node serves its HTTP API and the peer
// protocol between nodes on its one HTTP port this way.
package connmux
