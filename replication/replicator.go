package replication

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/prometheus/client_golang/prometheus"
)

// DB is what replication needs from the local database (*db.DB).
type DB interface {
	Subscribe(r db.SubscribeRequest) (*feed.Subscription, error)
	Hub() *feed.Hub
	Policy(ctx context.Context, collection string) (db.Policy, error)
	ApplyRemote(ctx context.Context, evs []db.RemoteEvent) error
}

// Heads tells a shard's head (feed.Hub).
type Heads interface {
	Head(shard uint64) uint64
}

// LinkStatus is the state of one link: the shipper (this DC → its topic) or the applier
// of one remote topic (topic → this DC).
type LinkStatus struct {
	Direction string `json:"direction"` // "ship" or "apply"
	From      string `json:"from"`
	To        string `json:"to"`
	Topic     string `json:"topic"`
	// State: starting, shipping / applying, idle (apply: nothing to consume yet),
	// stalled (ship: a record waits for Kafka longer than 5s), standby (ship, elected: another
	// node of the datacenter ships), disconnected (the latest
	// broker connection attempt failed), retrying (backing off after an error), stopped.
	State string `json:"state"`
	// Shipped: per local shard, the index up to which every event was acknowledged by
	// Kafka (or passed over by policy).
	Shipped map[string]uint64 `json:"shipped,omitempty"`
	// Applied: per "origin/shard", the index of the last remote event applied here.
	Applied map[string]uint64 `json:"applied,omitempty"`
	// Offsets: per partition, the next offset to consume (what is committed after apply).
	Offsets       map[string]int64 `json:"offsets,omitempty"`
	Events        uint64           `json:"events"`  // records shipped (acknowledged) or applied
	Skipped       uint64           `json:"skipped"` // events not shipped or not applied by policy, or undecodable records
	LagEvents     uint64           `json:"lag_events"`
	LagSeconds    float64          `json:"lag_seconds"`
	LastEventTime string           `json:"last_event_time,omitempty"` // origin commit time of the last shipped / applied event
	// LastDelaySeconds (apply): from origin commit to local apply, for the last batch.
	LastDelaySeconds float64 `json:"last_delay_seconds,omitempty"`
	Errors           uint64  `json:"errors"`
	LastError        string  `json:"last_error,omitempty"`
	LastErrorAt      string  `json:"last_error_at,omitempty"`
}

// Status is what GET /v1/replication answers.
type Status struct {
	Enabled bool         `json:"enabled"` // always true; a node without replication answers false and no links
	DC      string       `json:"dc"`
	Brokers []string     `json:"brokers"`
	Links   []LinkStatus `json:"links"`
}

// Replicator runs the shipper and the applier of one node.
type Replicator struct {
	cfg     Config
	db      DB
	ship    *shipper // nil with NoShip or Elect
	elect   *elector // with Elect: runs a shipper while this node leads the meta shard
	apply   *applier // nil with NoApply
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	once    sync.Once
}

// New validates cfg and prepares a replicator over d; nothing runs before Start. Its
// metrics are registered on cfg.Registerer when set.
func New(cfg Config, d DB) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if _, err := cfg.clientOpts("check"); err != nil {
		return nil, err
	}
	r := &Replicator{cfg: cfg, db: d}
	if cfg.Elect {
		e, ok := d.(Elected)
		if !ok {
			return nil, errors.New("replication: elected shipping needs a database with a meta shard")
		}
		r.elect = &elector{r: r, db: e}
	} else if !cfg.NoShip {
		s, err := newShipper(cfg, d)
		if err != nil {
			return nil, err
		}
		r.ship = s
	}
	if !cfg.NoApply {
		r.apply = newApplier(cfg, d)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{r}); err != nil {
			return nil, fmt.Errorf("replication: metrics: %w", err)
		}
	}
	return r, nil
}

// Start starts the loops. They retry on their own (with backoff) until Close.
func (r *Replicator) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.started = cancel, true
	if r.ship != nil {
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.ship.run(ctx) }()
		go func() { defer r.wg.Done(); r.ship.flushLoop(ctx) }()
	}
	if r.elect != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.elect.run(ctx) }()
	}
	if r.apply != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.apply.run(ctx) }()
	}
	r.cfg.Logger.Info("replication started", "dc", r.cfg.DC, "brokers", r.cfg.Brokers, "ship", r.ship != nil, "elect", r.elect != nil,
		"apply", r.apply != nil, "topic", r.cfg.Topic(r.cfg.DC), "remotes", r.cfg.Remotes)
}

// Ships reports whether this node ships, or may ship when elected (and so can serve
// WaitShipped).
func (r *Replicator) Ships() bool { return r.ship != nil || r.elect != nil }

// WaitShipped implements db.ShipWaiter: it returns once Kafka acknowledged the local
// event at pos, or ctx ends.
func (r *Replicator) WaitShipped(ctx context.Context, pos log.Position) error {
	if r.elect != nil {
		return r.elect.waitShipped(ctx, pos)
	}
	if r.ship == nil {
		return ErrNotShipping
	}
	return r.ship.WaitShipped(ctx, pos)
}

// Status reports every link of this node.
func (r *Replicator) Status() Status {
	st := Status{Enabled: true, DC: r.cfg.DC, Brokers: r.cfg.Brokers, Links: []LinkStatus{}}
	if r.ship != nil {
		st.Links = append(st.Links, r.ship.status(r.db.Hub()))
	}
	if r.elect != nil {
		if s := r.elect.shipper(); s != nil {
			st.Links = append(st.Links, s.status(r.db.Hub()))
		} else {
			topic := r.cfg.Topic(r.cfg.DC)
			link := LinkStatus{Direction: "ship", From: r.cfg.DC, To: topic, Topic: topic, State: "standby", Shipped: map[string]uint64{}}
			if tok, err := feed.DecodeToken(r.elect.db.ShipProgress()); err == nil {
				for sh, i := range tok {
					link.Shipped[fmt.Sprint(sh)] = i
				}
			}
			st.Links = append(st.Links, link)
		}
	}
	if r.apply != nil {
		st.Links = append(st.Links, r.apply.status()...)
	}
	sort.SliceStable(st.Links, func(i, j int) bool {
		if st.Links[i].Direction != st.Links[j].Direction {
			return st.Links[i].Direction > st.Links[j].Direction // ship first
		}
		return st.Links[i].Topic < st.Links[j].Topic
	})
	return st
}

// ReplicationStatus is Status for the REST gateway.
func (r *Replicator) ReplicationStatus() any { return r.Status() }

// Close stops the loops, waits for them and writes the final shipping progress.
// Idempotent.
func (r *Replicator) Close() error {
	r.once.Do(func() {
		if r.started {
			r.cancel()
			r.wg.Wait()
		}
		if r.ship != nil {
			r.ship.close()
		}
		if r.apply != nil {
			r.apply.close()
		}
		r.cfg.Logger.Info("replication stopped", "dc", r.cfg.DC)
	})
	return nil
}

var _ prometheus.Collector = collector{}
