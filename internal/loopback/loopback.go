package loopback

import (
	"net"
	"testing"
)

// FreeAddr returns 127.0.0.1 with a port that was free a moment ago (the kernel chose it
// for a listener, closed at once).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
