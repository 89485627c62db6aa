package loopback_test

import (
	"net"
	"testing"

	"github.com/aerolithsdb/aerolith/internal/loopback"
)

func TestFreeAddrCanBeListenedOn(t *testing.T) {
	addr := loopback.FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q (%v), want 127.0.0.1:port", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}
