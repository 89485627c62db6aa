// Package meta keeps the cluster's own state in the meta shard, a raft group like the
// data shards: which nodes belong to the cluster (with their raft and HTTP addresses and
// whether they are active, leaving or removed), the replication factor, and the
// placement — the voters each shard should have — and, per shard, the replica id of each
// node that rejoined it under a later generation of its id. Machine is that state machine.
//
// Controller acts on it. It runs on every node and works only while its node leads the
// meta shard: it probes every node over HTTP, adds every member to every shard (as a
// non-voting replica first), promotes caught-up replicas until each shard has as many
// voters as the replication factor allows, removes the replicas of nodes that are
// leaving or stayed down past DeadAfter once replacements vote, marks drained nodes
// removed, moves votes one at a time until no node holds two more than another (the node
// giving a vote up rejoins the shard as non-voting under a new replica id), and spreads
// shard leaderships evenly over the voters. It sees each shard through its own node's
// replica, so it leaves removing that replica to the next meta leader.
package meta
