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
// takes the listener over. Once the node's replicas run it answers the cluster
// controller's probes (meta.LocalPath) with their applied indexes, so a node that takes a
// while to catch up after a restart is seen alive, not dead; every other request gets 503
// unavailable.
type starting struct {
	tcp   *net.TCPListener
	srv   *http.Server
	done  chan struct{}
	local atomic.Pointer[db.DB]
}

// serveStarting starts answering on ln. It returns nil (nothing answers until the gateway
// serves) when ln is not a TCP listener.
func serveStarting(ln net.Listener) *starting {
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	s := &starting{tcp: tcp, done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(heldListener{tcp}) // returns ErrServerClosed at handOver
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
	if d := s.local.Load(); d != nil && r.Method == http.MethodGet && r.URL.Path == meta.LocalPath {
		json.NewEncoder(w).Encode(d.LocalApplied())
		return
	}
	info := gateway.Lookup(fmt.Errorf("%w: the node is starting", db.ErrUnavailable))
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(info.HTTP)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": info.Code, "message": info.Message}})
}

// handOver stops answering and leaves the listener open, for the gateway to serve on.
func (s *starting) handOver() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
	return s.tcp.SetDeadline(time.Time{})
}

// heldListener is a listener whose Close ends a pending Accept without closing the socket.
type heldListener struct{ *net.TCPListener }

func (l heldListener) Close() error { return l.SetDeadline(time.Now()) }
