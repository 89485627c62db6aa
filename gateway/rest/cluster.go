package rest

import (
	"github.com/aerolithsdb/aerolith/log"
	"github.com/gofiber/fiber/v2"
)

type clusterNode struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Self     bool   `json:"self,omitempty"`
}

type clusterShard struct {
	Shard      uint64        `json:"shard"`
	Replicas   []clusterNode `json:"replicas"`
	Membership string        `json:"membership"` // "quorum" or "local"
	Leader     uint64        `json:"leader"`     // 0: no leader known here
	Term       uint64        `json:"term"`
	Applied    uint64        `json:"applied"` // raft index this node's replica has applied
}

type clusterResponse struct {
	Node     uint64         `json:"node"`
	RaftAddr string         `json:"raft_addr"`
	Nodes    []clusterNode  `json:"nodes"`
	Shards   []clusterShard `json:"shards"`
}

// cluster answers GET /v1/cluster: the nodes, every shard's replicas and leader, and how
// far this node's replica of each shard has applied.
func (s *Server) cluster(c *fiber.Ctx) error {
	st := s.cfg.Store.Cluster(c.UserContext())
	nodes := func(ms []log.Member) []clusterNode {
		out := make([]clusterNode, len(ms))
		for i, m := range ms {
			out[i] = clusterNode{ID: m.ID, RaftAddr: m.RaftAddr, Self: m.ID == st.NodeID}
		}
		return out
	}
	r := clusterResponse{Node: st.NodeID, RaftAddr: st.RaftAddr, Nodes: nodes(st.Nodes), Shards: make([]clusterShard, len(st.Shards))}
	for i, sh := range st.Shards {
		r.Shards[i] = clusterShard{Shard: sh.Shard, Replicas: nodes(sh.Replicas), Membership: sh.Membership,
			Leader: sh.Leader, Term: sh.Term, Applied: sh.Applied}
	}
	return c.JSON(r)
}
