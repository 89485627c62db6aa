package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what change streams need from the database.
type Store interface {
	Subscribe(r db.SubscribeRequest) (*feed.Subscription, error)
	Query(ctx context.Context, r db.QueryRequest) (*db.QueryResult, error)
}

// Limits bound what change-stream clients may hold. Zero values mean the defaults.
type Limits struct {
	MaxConnections    int           // WebSocket connections plus SSE streams per node; default 1024
	MaxSubscriptions  int           // subscriptions and live queries per WebSocket connection; default 16
	MaxMessageBytes   int           // largest client message; default 64 KiB
	QueueLength       int           // encoded messages waiting for the socket, per connection; default 32
	PingInterval      time.Duration // WebSocket ping period; default 20s
	PongTimeout       time.Duration // a connection that answers no ping within this is closed; default 10s
	WriteTimeout      time.Duration // a client that accepts no frame for this long is disconnected; default 10s
	HeartbeatInterval time.Duration // SSE comment heartbeat when nothing else is sent; default 15s
	LiveQueryInterval time.Duration // live queries re-run at most this often while events flow; default 50ms
}

// DefaultLimits returns the defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections: 1024, MaxSubscriptions: 16, MaxMessageBytes: 64 << 10, QueueLength: 32,
		PingInterval: 20 * time.Second, PongTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		HeartbeatInterval: 15 * time.Second, LiveQueryInterval: 50 * time.Millisecond,
	}
}

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	defd := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.MaxConnections, d.MaxConnections)
	def(&l.MaxSubscriptions, d.MaxSubscriptions)
	def(&l.MaxMessageBytes, d.MaxMessageBytes)
	def(&l.QueueLength, d.QueueLength)
	defd(&l.PingInterval, d.PingInterval)
	defd(&l.PongTimeout, d.PongTimeout)
	defd(&l.WriteTimeout, d.WriteTimeout)
	defd(&l.HeartbeatInterval, d.HeartbeatInterval)
	defd(&l.LiveQueryInterval, d.LiveQueryInterval)
	return l
}

// Validate reports every problem with l (zero fields are fine: they mean the default).
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v, hi int) {
		if v < 0 || v > hi {
			errs = append(errs, fmt.Errorf("changes: %s must be in 0..%d, got %d", name, hi, v))
		}
	}
	check("max connections", l.MaxConnections, 1<<20)
	check("max subscriptions", l.MaxSubscriptions, 1<<16)
	check("max message bytes", l.MaxMessageBytes, 16<<20)
	check("queue length", l.QueueLength, 1<<16)
	for name, d := range map[string]time.Duration{
		"ping interval": l.PingInterval, "pong timeout": l.PongTimeout, "write timeout": l.WriteTimeout,
		"heartbeat interval": l.HeartbeatInterval, "live query interval": l.LiveQueryInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("changes: %s must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// Config configures a Server.
type Config struct {
	Store      Store // required
	Limits     Limits
	Logger     *slog.Logger
	Registerer prometheus.Registerer // metrics are registered here when set
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("changes: store is required"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
