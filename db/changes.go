package db

import (
	"context"
	"fmt"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/tiers"
)

// SubscribeRequest is a change-stream subscription as the gateways receive it.
type SubscribeRequest struct {
	Collections   []string
	Filter        string
	IncludeBefore bool
	IncludeAfter  bool
	// From is "now" (default), "beginning", "time" (with Time) or "token" (with Token).
	From  string
	Time  time.Time
	Token string
}

// Subscribe opens a change stream on this node's event store.
func (d *DB) Subscribe(r SubscribeRequest) (*feed.Subscription, error) {
	spec := feed.Spec{
		Collections: r.Collections, IncludeBefore: r.IncludeBefore, IncludeAfter: r.IncludeAfter,
		Cluster: d.cfg.Cluster, DC: d.cfg.DC,
	}
	for _, c := range r.Collections {
		if !ValidCollection(c) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidCollection, c)
		}
	}
	if r.Filter != "" {
		prog, err := d.compiler.Compile(r.Filter)
		if err != nil {
			return nil, err
		}
		spec.Filter = prog
	}
	switch r.From {
	case "", "now":
		spec.Start.Kind = feed.StartNow
	case "beginning":
		spec.Start.Kind = feed.StartBeginning
	case "time":
		if r.Time.IsZero() {
			return nil, fmt.Errorf("%w: from time needs a time", ErrInvalidArgument)
		}
		spec.Start = feed.Start{Kind: feed.StartTime, Time: r.Time}
	case "token":
		tok, err := feed.DecodeToken(r.Token)
		if err != nil {
			return nil, err
		}
		spec.Start = feed.Start{Kind: feed.StartToken, Token: tok}
	default:
		return nil, fmt.Errorf("%w: from must be now, beginning, time or token, got %q", ErrInvalidArgument, r.From)
	}
	d.refreshHeads()
	return feed.Subscribe(feedStore{d}, d.hub, spec)
}

// Hub returns the node's change-feed hub.
func (d *DB) Hub() *feed.Hub { return d.hub }

// feedStore serves the change feed from the local event store, and the shards this node
// holds no replica of through the nodes that do.
type feedStore struct{ d *DB }

var _ feed.Store = feedStore{}

func (f feedStore) Shards() []uint64 { return f.d.shardIDs() }

func (f feedStore) Events(shard, from uint64, max int) ([]log.Event, error) {
	raw, err := f.d.events(context.Background(), shard, from, max)
	if err != nil {
		return nil, err
	}
	out := make([]log.Event, len(raw))
	for i, b := range raw {
		if out[i], err = f.d.codec.Decode(b); err != nil {
			return nil, fmt.Errorf("db: shard %d event %d: %w", shard, from+uint64(i), err)
		}
	}
	return out, nil
}

func (f feedStore) Body(shard uint64, coll, id string, version uint64) ([]byte, bool, error) {
	if !f.d.local(shard) {
		var r peerBodyResult
		err := f.d.peerCall(context.Background(), shard, "body", peerBody{Shard: shard, Collection: coll, ID: id, Version: version}, &r)
		return r.Body, r.OK, err
	}
	v, ok, err := f.d.store.Version(tiers.Key{Shard: shard, Collection: coll, ID: id}, version)
	if err != nil || !ok || v.Op == log.OpDelete {
		return nil, false, err
	}
	return v.Body, true, nil
}

func (f feedStore) Earliest(uint64) (uint64, error) { return 1, nil }
