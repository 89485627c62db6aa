package loopback

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// floor is the lowest port handed out.
const floor = 10000

var (
	mu     sync.Mutex
	handed = map[string]bool{} // host:port given out by this process
)

// FreeAddr returns 127.0.0.1 with a port that was free a moment ago (see PortOn).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(PortOn(tb, "127.0.0.1")))
}

// PortOn returns a port on host (a loopback address, 127.0.0.x) that was free a moment ago
// and that this process has not handed out before. It picks below the kernel's ephemeral
// range: a port in that range can be taken by an outgoing connection's source port between
// this call and the listener's bind ("address already in use"), and clusters under test
// dial each other all the time. Only when that range leaves no room does the kernel
// choose.
func PortOn(tb testing.TB, host string) int {
	tb.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		if lo <= floor+1000 {
			break
		}
		p := floor + rand.IntN(lo-floor)
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		if handed[addr] {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			handed[addr] = true
			return p
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		tb.Fatalf("no free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
