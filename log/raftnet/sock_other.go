//go:build !linux

package raftnet

import (
	"net"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's; elsewhere WriteTimeout bounds
// a stuck write.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }

// alive reports a stream as standing: without a non-blocking peek only a failed write
// tells that it has ended.
func alive(net.Conn) bool { return true }
