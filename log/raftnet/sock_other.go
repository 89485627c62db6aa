//go:build !linux

package raftnet

import "net"

// tune sets up a stream in either direction: no Nagle delay and keepalive probes on idle
// streams. (TCP_USER_TIMEOUT is Linux's; elsewhere WriteTimeout bounds a stuck write.)
func (t *Transport) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(true)
	tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: t.cfg.UserTimeout, Interval: t.cfg.UserTimeout / 3, Count: 3})
}

// alive reports a stream as standing: without a non-blocking peek only a failed write
// tells that it has ended.
func alive(net.Conn) bool { return true }
