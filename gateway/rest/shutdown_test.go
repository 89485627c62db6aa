package rest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
	"github.com/aerolithsdb/aerolith/node"
)

// TestShutdownDoesNotWaitForSilentConnections: a connection whose client never sends a
// request (an HTTP client's spare connection) must not hold a graceful stop open until the
// server's read timeout, while an idle keep-alive connection and a finished request do not
// either.
func TestShutdownDoesNotWaitForSilentConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: loopback.FreeAddr(t), Shards: 1,
		ShutdownTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := client{t: t, base: "http://" + n.HTTPAddr()}
	if r := c.do("PUT", "/v1/collections/c/docs/a", `{"n":1}`); r.status != 201 && r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.raw)
	}
	silent, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A byte read with a deadline makes sure the server accepted the connection.
	silent.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	silent.Read(make([]byte, 1))

	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("graceful stop took %s with a silent connection open (the server's read timeout is 30s)", took)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection is still open after the stop")
	}
}
