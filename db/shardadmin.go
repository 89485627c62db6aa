package db

import (
	"context"
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
)

// shardAdmin is the log as the meta controller sees it (meta.Host): the membership of
// each shard, read and changed through this node's replica, or through a node that holds
// one when this node does not (peer.go). So the meta leader manages every shard whether
// or not it holds it.
type shardAdmin struct {
	*log.Host
	d *DB
}

// peerChange is a membership change run on a node that holds the shard.
type peerChange struct {
	Shard uint64 `json:"shard"`
	Kind  string `json:"kind"` // add_non_voting, promote, remove, transfer_leader
	ID    uint64 `json:"id"`
	Addr  string `json:"addr,omitempty"`
}

type peerLeader struct {
	Leader uint64 `json:"leader"`
	OK     bool   `json:"ok"`
}

// remote reports whether shard's membership is read and changed through another node:
// this node holds no replica of it, or one the shard has not admitted yet (it joined,
// and cannot read the membership before the leader reaches it).
func (a shardAdmin) remote(shard uint64) bool { return shard != log.MetaShard && !a.Host.Hosts(shard) }

func (a shardAdmin) Membership(ctx context.Context, shard uint64) (log.Membership, error) {
	if !a.remote(shard) {
		return a.Host.Membership(ctx, shard)
	}
	var m log.Membership
	err := a.d.peerCall(ctx, shard, "membership", peerShard{Shard: shard}, &m)
	return m, err
}

func (a shardAdmin) change(ctx context.Context, shard uint64, kind string, id uint64, addr string) error {
	return a.d.peerCall(ctx, shard, "change", peerChange{Shard: shard, Kind: kind, ID: id, Addr: addr}, nil)
}

func (a shardAdmin) AddNonVoting(ctx context.Context, shard, id uint64, addr string) error {
	if !a.remote(shard) {
		return a.Host.AddNonVoting(ctx, shard, id, addr)
	}
	return a.change(ctx, shard, "add_non_voting", id, addr)
}

func (a shardAdmin) Promote(ctx context.Context, shard, id uint64, addr string) error {
	if !a.remote(shard) {
		return a.Host.Promote(ctx, shard, id, addr)
	}
	return a.change(ctx, shard, "promote", id, addr)
}

func (a shardAdmin) RemoveReplica(ctx context.Context, shard, id uint64) error {
	if !a.remote(shard) {
		return a.Host.RemoveReplica(ctx, shard, id)
	}
	return a.change(ctx, shard, "remove", id, "")
}

func (a shardAdmin) TransferLeader(ctx context.Context, shard, to uint64) error {
	if !a.remote(shard) {
		return a.Host.TransferLeader(ctx, shard, to)
	}
	return a.change(ctx, shard, "transfer_leader", to, "")
}

// Leader returns the replica leading shard, as a node that holds the shard knows it.
func (a shardAdmin) Leader(shard uint64) (uint64, bool) {
	if !a.remote(shard) {
		return a.Host.Leader(shard)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.d.cfg.ReadTimeout)
	defer cancel()
	var l peerLeader
	if err := a.d.peerCall(ctx, shard, "leader", peerShard{Shard: shard}, &l); err != nil {
		return 0, false
	}
	return l.Leader, l.OK
}

// Hosts reports true for a shard this node does not hold: a node that holds it answers
// for it, so the controller has no reason to hand the meta leadership off.
func (a shardAdmin) Hosts(shard uint64) bool {
	if a.remote(shard) {
		return true
	}
	return a.Host.Hosts(shard)
}

// serveChange runs a membership change or lookup for the meta leader on this node's
// replica of the shard.
func (d *DB) serveChange(ctx context.Context, c peerChange) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	switch c.Kind {
	case "add_non_voting":
		return d.host.AddNonVoting(ctx, c.Shard, c.ID, c.Addr)
	case "promote":
		return d.host.Promote(ctx, c.Shard, c.ID, c.Addr)
	case "remove":
		return d.host.RemoveReplica(ctx, c.Shard, c.ID)
	case "transfer_leader":
		return d.host.TransferLeader(ctx, c.Shard, c.ID)
	}
	return fmt.Errorf("%w: no membership change %q", ErrInvalidArgument, c.Kind)
}
