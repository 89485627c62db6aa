package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/meta"
)

// starting answers on the HTTP listener while the node starts, until the REST gateway
// takes the listener over. It answers the cluster controller's probes (meta.LocalPath)
// as this node: with nothing applied while the node joins and opens its data, then with
// its replicas' applied indexes once they run. So a node that takes a while to join, or
// to catch up after a restart, is seen alive, not dead. Every other request gets 503
// unavailable.
type starting struct {
	id    uint64
	srv   *http.Server
	done  chan struct{}
	local atomic.Pointer[db.DB]
}

// serveStarting starts answering on ln for node id; handOver closes ln.
func serveStarting(ln net.Listener, id uint64) *starting {
	s := &starting{id: id, done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // returns ErrServerClosed at handOver
	}()
	return s
}

// probing makes the probe path answer from d.
func (s *starting) probing(d *db.DB) {
	if s != nil {
		s.local.Store(d)
	}
}

func (s *starting) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet && r.URL.Path == meta.LocalPath {
		p := meta.Probe{Node: s.id, Applied: map[uint64]uint64{}}
		if d := s.local.Load(); d != nil {
			p = d.LocalApplied()
		}
		json.NewEncoder(w).Encode(p)
		return
	}
	info := gateway.Lookup(fmt.Errorf("%w: the node is starting", db.ErrUnavailable))
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(info.HTTP)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": info.Code, "message": info.Message}})
}

// handOver stops answering and closes its listener, for the gateway to serve on another
// of the same connections (connmux.Mux.HTTP1). Idempotent.
func (s *starting) handOver() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}
