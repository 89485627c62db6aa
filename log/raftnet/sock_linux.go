package raftnet

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tune sets up a stream in either direction: no Nagle delay, keepalive probes on idle
// streams, and TCP_USER_TIMEOUT so that data left unacknowledged (a partition, a peer
// gone without a word) aborts the stream after UserTimeout instead of TCP's minutes of
// retransmission.
func (t *Transport) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(true)
	tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: t.cfg.UserTimeout, Interval: t.cfg.UserTimeout / 3, Count: 3})
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	ms := int(t.cfg.UserTimeout / time.Millisecond)
	raw.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms); err != nil {
			t.cfg.Logger.Debug("raft transport: TCP_USER_TIMEOUT not set", "err", err)
		}
	})
}

// alive asks the kernel, without blocking, whether a sending stream still stands. The
// receiver never writes on it, so anything a peek finds (the end of the stream, a reset,
// a timeout) means it is gone.
func alive(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return true
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	up := true
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		up = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR)
		return true
	})
	return err == nil && up
}
