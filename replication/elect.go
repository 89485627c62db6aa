package replication

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
)

// Elected is what elected shipping needs of the local database (*db.DB): whether this node
// leads the meta shard, and the shipping progress kept there.
type Elected interface {
	LeadsMeta() bool
	ShipProgress() string
	SetShipProgress(ctx context.Context, token string) error
}

// electInterval is how often a node checks whether it should ship.
const electInterval = 250 * time.Millisecond

// elector starts the shipper on this node while it leads the meta shard and stops it when
// it does not. The shipper resumes from the furthest of the progress kept in the meta
// shard and in this node's own file: both only ever name events Kafka acknowledged.
type elector struct {
	r  *Replicator
	db Elected

	mu     sync.Mutex
	ship   *shipper // the running shipper, nil while another node ships
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (e *elector) run(ctx context.Context) {
	t := time.NewTicker(electInterval)
	defer t.Stop()
	defer e.stop()
	for {
		leads := e.db.LeadsMeta()
		e.mu.Lock()
		running := e.ship != nil
		e.mu.Unlock()
		switch {
		case leads && !running:
			if err := e.start(ctx); err != nil {
				e.r.cfg.Logger.Error("starting the elected shipper", "err", err)
			}
		case !leads && running:
			e.r.cfg.Logger.Info("this node no longer leads the meta shard; stopping shipping")
			e.stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *elector) start(ctx context.Context) error {
	s, err := newShipper(e.r.cfg, e.r.db)
	if err != nil {
		return err
	}
	tok, err := furthest(s.ackedTok, e.db.ShipProgress())
	if err != nil {
		return err
	}
	s.ackedTok, s.stored = tok, ""
	s.acked = feed.Token{}
	if tok != "" {
		s.acked, _ = feed.DecodeToken(tok)
	}
	s.keep = func(tok string) error {
		kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return e.db.SetShipProgress(kctx, tok)
	}
	sctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.ship, e.cancel = s, cancel
	e.mu.Unlock()
	e.wg.Add(2)
	go func() { defer e.wg.Done(); s.run(sctx) }()
	go func() { defer e.wg.Done(); s.flushLoop(sctx) }()
	e.r.cfg.Logger.Info("this node leads the meta shard: shipping", "from", tok)
	return nil
}

// stop stops the running shipper, if any, and keeps its final progress.
func (e *elector) stop() {
	e.mu.Lock()
	s, cancel := e.ship, e.cancel
	e.mu.Unlock()
	if s == nil {
		return
	}
	cancel()
	e.wg.Wait()
	s.close()
	e.mu.Lock()
	e.ship = nil
	e.mu.Unlock()
}

func (e *elector) shipper() *shipper {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ship
}

// waitShipped waits until the event at pos is shipped: by this node's shipper when it
// ships, else as the progress kept in the meta shard says (it is kept every
// FlushInterval by the node that ships).
func (e *elector) waitShipped(ctx context.Context, pos log.Position) error {
	t := time.NewTicker(e.r.cfg.FlushInterval / 4)
	defer t.Stop()
	for {
		if s := e.shipper(); s != nil {
			return s.WaitShipped(ctx, pos)
		}
		if tok, err := feed.DecodeToken(e.db.ShipProgress()); err == nil && tok[pos.Shard] >= pos.Index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication: waiting for Kafka to acknowledge %s: %w", pos, ctx.Err())
		case <-t.C:
		}
	}
}

// furthest returns the token that is, shard by shard, the further of a and b ("" for
// none).
func furthest(a, b string) (string, error) {
	ta, tb := feed.Token{}, feed.Token{}
	var err error
	if a != "" {
		if ta, err = feed.DecodeToken(a); err != nil {
			return "", fmt.Errorf("replication: shipping progress: %w", err)
		}
	}
	if b != "" {
		if tb, err = feed.DecodeToken(b); err != nil {
			return "", fmt.Errorf("replication: shipping progress in the meta shard: %w", err)
		}
	}
	if len(ta) == 0 && len(tb) == 0 {
		return "", nil
	}
	out := ta.Clone()
	for s, i := range tb {
		out[s] = max(out[s], i)
	}
	return out.Encode(), nil
}
