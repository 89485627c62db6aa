package rest

import (
	"fmt"
	"strconv"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/gofiber/fiber/v2"
)

type clusterNode struct {
	ID        uint64 `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	HTTPAddr  string `json:"http_addr,omitempty"`
	State     string `json:"state,omitempty"`     // active, leaving, removed (from the meta shard)
	Reachable *bool  `json:"reachable,omitempty"` // answered this node's probe just now
	Self      bool   `json:"self,omitempty"`
}

type clusterReplica struct {
	ID uint64 `json:"id"` // the node
	// ReplicaID is the replica's raft id when it is not the node id: the node rejoined the
	// shard after its vote moved away.
	ReplicaID uint64  `json:"replica_id,omitempty"`
	RaftAddr  string  `json:"raft_addr"`
	Applied   *uint64 `json:"applied,omitempty"` // absent when the node did not answer
	Lag       *uint64 `json:"lag,omitempty"`     // entries behind the leader's replica
	Self      bool    `json:"self,omitempty"`
}

type clusterShard struct {
	Shard      uint64           `json:"shard"`
	Meta       bool             `json:"meta,omitempty"` // the meta shard (membership and placement)
	Replicas   []clusterReplica `json:"replicas"`       // voters
	NonVoting  []clusterReplica `json:"non_voting"`
	Placement  []uint64         `json:"placement,omitempty"` // the voters the controller aims for
	Hosts      []uint64         `json:"hosts,omitempty"`     // placed hosting: the nodes that hold the shard
	Absent     []uint64         `json:"absent,omitempty"`    // the nodes placed outside the shard
	Remote     bool             `json:"remote,omitempty"`    // this node holds no replica: another node reported the shard
	Membership string           `json:"membership"`          // "quorum" or "local"
	Leader     uint64           `json:"leader"`              // the leader's node; 0: no leader known here
	Term       uint64           `json:"term"`
	Applied    uint64           `json:"applied"` // raft index this node's replica has applied
}

type clusterResponse struct {
	Node              uint64         `json:"node"`
	RaftAddr          string         `json:"raft_addr"`
	ReplicationFactor int            `json:"replication_factor"`
	Hosting           string         `json:"hosting"`
	Nodes             []clusterNode  `json:"nodes"`
	Shards            []clusterShard `json:"shards"`
}

// cluster answers GET /v1/cluster: the members and their states, every shard's voters and
// non-voting replicas with how far each has applied and its lag behind the leader, and
// the leaders.
func (s *Server) cluster(c *fiber.Ctx) error {
	v := s.cfg.Store.Cluster(c.UserContext())
	r := clusterResponse{Node: v.NodeID, RaftAddr: v.RaftAddr, ReplicationFactor: v.ReplicationFactor, Hosting: v.Hosting}
	seen := map[uint64]bool{}
	for _, m := range v.Members {
		_, ok := v.Applied[m.ID]
		reach := ok
		r.Nodes = append(r.Nodes, clusterNode{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, State: string(m.State),
			Reachable: &reach, Self: m.ID == v.NodeID})
		seen[m.ID] = true
	}
	for _, m := range v.Nodes { // raft members not (yet) registered in the meta shard
		if !seen[m.ID] {
			r.Nodes = append(r.Nodes, clusterNode{ID: m.ID, RaftAddr: m.RaftAddr, Self: m.ID == v.NodeID})
		}
	}
	for _, sh := range v.Shards {
		var leaderApplied *uint64
		leader := log.NodeOf(sh.Leader)
		if a, ok := v.Applied[leader][sh.Shard]; ok {
			leaderApplied = &a
		}
		replicas := func(ms []log.Member) []clusterReplica {
			out := make([]clusterReplica, 0, len(ms))
			for _, m := range ms {
				rep := clusterReplica{ID: m.Node, RaftAddr: m.RaftAddr, Self: m.Node == v.NodeID}
				if m.ID != m.Node {
					rep.ReplicaID = m.ID
				}
				if a, ok := v.Applied[m.Node][sh.Shard]; ok {
					rep.Applied = &a
					if leaderApplied != nil {
						lag := *leaderApplied - min(a, *leaderApplied)
						rep.Lag = &lag
					}
				}
				out = append(out, rep)
			}
			return out
		}
		r.Shards = append(r.Shards, clusterShard{Shard: sh.Shard, Meta: sh.Shard == log.MetaShard,
			Replicas: replicas(sh.Replicas), NonVoting: replicas(sh.NonVoting), Placement: v.Placement[sh.Shard],
			Hosts: v.Hosts[sh.Shard], Absent: v.Absent[sh.Shard], Remote: v.Remote[sh.Shard],
			Membership: sh.Membership, Leader: leader, Term: sh.Term, Applied: sh.Applied})
	}
	return c.JSON(r)
}

// clusterLocal answers GET /v1/cluster/local: this node's id and its replicas' applied
// indexes, without asking anyone else. Other nodes probe it.
func (s *Server) clusterLocal(c *fiber.Ctx) error {
	p := s.cfg.Store.LocalApplied()
	applied := make(map[string]uint64, len(p.Applied))
	for shard, a := range p.Applied {
		applied[strconv.FormatUint(shard, 10)] = a
	}
	return c.JSON(fiber.Map{"node": p.Node, "applied": applied})
}

// join answers POST /v1/cluster/nodes {"id", "raft_addr", "http_addr"}: adds a node to
// the cluster (see db.Join). The new node starts with --join once this answered.
func (s *Server) join(c *fiber.Ctx) error {
	var req db.JoinRequest
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	n, err := s.cfg.Store.Join(c.UserContext(), req)
	if err != nil {
		return s.error(c, err)
	}
	return c.JSON(nodeJSON(n))
}

// member answers GET /v1/cluster/nodes/{id}: the member as this node's meta state has it
// (404 not_found when it is none). A restarting node asks it whether it was removed.
func (s *Server) member(c *fiber.Ctx) error {
	id, err := nodeID(c)
	if err != nil {
		return s.error(c, err)
	}
	n, err := s.cfg.Store.Member(id)
	if err != nil {
		return s.error(c, err)
	}
	return c.JSON(nodeJSON(n))
}

// decommission answers DELETE /v1/cluster/nodes/{id}: marks the node leaving; its
// replicas move away and it ends up removed (watch GET /v1/cluster).
func (s *Server) decommission(c *fiber.Ctx) error {
	id, err := nodeID(c)
	if err != nil {
		return s.error(c, err)
	}
	n, err := s.cfg.Store.Decommission(c.UserContext(), id)
	if err != nil {
		return s.error(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(nodeJSON(n))
}

// nodeID reads the {id} of a /v1/cluster/nodes/{id} route: a node id, never 0.
func nodeID(c *fiber.Ctx) (uint64, error) {
	id, err := strconv.ParseUint(c.Params("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: node id %q", db.ErrInvalidArgument, c.Params("id"))
	}
	return id, nil
}

// replicationFactor answers PUT /v1/cluster/replication-factor {"replication_factor": n}.
func (s *Server) replicationFactor(c *fiber.Ctx) error {
	var req struct {
		RF int `json:"replication_factor"`
	}
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	if err := s.cfg.Store.SetReplicationFactor(c.UserContext(), req.RF); err != nil {
		return s.error(c, err)
	}
	return c.JSON(fiber.Map{"replication_factor": req.RF})
}

// hosting answers PUT /v1/cluster/hosting {"hosting": "all" | "placed"}.
func (s *Server) hosting(c *fiber.Ctx) error {
	var req struct {
		Hosting string `json:"hosting"`
	}
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	if err := s.cfg.Store.SetHosting(c.UserContext(), req.Hosting); err != nil {
		return s.error(c, err)
	}
	return c.JSON(fiber.Map{"hosting": req.Hosting})
}

// transferLeader answers POST /v1/cluster/shards/{shard}/leader {"to": replica id}: this
// node asks its replica of the shard to hand the leadership to replica to, and waits up
// to an election timeout for it to move. The meta leader's controller calls it on a
// shard's leader when its own replica of the shard does not vote.
func (s *Server) transferLeader(c *fiber.Ctx) error {
	shard, err := strconv.ParseUint(c.Params("shard"), 10, 64)
	if err != nil || shard == 0 {
		return s.error(c, fmt.Errorf("%w: shard %q", db.ErrInvalidArgument, c.Params("shard")))
	}
	var req struct {
		To uint64 `json:"to"`
	}
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	if err := s.cfg.Store.TransferLeader(c.UserContext(), shard, req.To); err != nil {
		return s.error(c, err)
	}
	return c.JSON(fiber.Map{"shard": shard, "to": req.To})
}

// placeShard answers PUT and DELETE /v1/cluster/shards/{shard}/replicas/{id}: node id is
// placed back in the shard (PUT) or outside it (DELETE). The change happens in the
// background (GET /v1/cluster shows it): 202.
func (s *Server) placeShard(c *fiber.Ctx) error {
	shard, err := strconv.ParseUint(c.Params("shard"), 10, 64)
	if err != nil || shard == 0 {
		return s.error(c, fmt.Errorf("%w: shard %q", db.ErrInvalidArgument, c.Params("shard")))
	}
	node, err := nodeID(c)
	if err != nil {
		return s.error(c, err)
	}
	absent := c.Method() == fiber.MethodDelete
	if err := s.cfg.Store.PlaceShard(c.UserContext(), shard, node, absent); err != nil {
		return s.error(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"shard": shard, "node": node, "placed": !absent})
}

func nodeJSON(n meta.Node) clusterNode {
	return clusterNode{ID: n.ID, RaftAddr: n.RaftAddr, HTTPAddr: n.HTTPAddr, State: string(n.State)}
}
