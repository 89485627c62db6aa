package replication

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// health is a franz-go hook that remembers the outcome of the latest broker connection
// attempts, so a link can say it cannot reach Kafka while the client retries underneath.
type health struct {
	mu      sync.Mutex
	okAt    time.Time
	errAt   time.Time
	lastErr string
}

var _ kgo.HookBrokerConnect = (*health)(nil)

func (h *health) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errAt, h.lastErr = time.Now(), "broker "+net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))+": "+err.Error()
		return
	}
	h.okAt = time.Now()
}

// down returns the latest connection error when it is more recent than the latest
// successful connection.
func (h *health) down() (string, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.errAt.IsZero() && h.errAt.After(h.okAt) {
		return h.lastErr, h.errAt, true
	}
	return "", time.Time{}, false
}
