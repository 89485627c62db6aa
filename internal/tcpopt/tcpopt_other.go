//go:build !linux

package tcpopt

import (
	"net"
	"time"
)

// SetUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's; elsewhere callers bound a
// stuck write with a deadline.
func SetUserTimeout(*net.TCPConn, time.Duration) error { return nil }

// Alive reports a connection as standing: without a non-blocking peek only a failed
// write tells that it has ended.
func Alive(net.Conn) bool { return true }
