// Package meta keeps the cluster's own state in the meta shard, a raft group like the
// data shards: which nodes belong to the cluster (with their raft and HTTP addresses and
// whether they are active, leaving or removed), the replication factor, and the
// placement — the voters each shard should have. Machine is that state machine.
//
// Controller acts on it. It runs on every node and works only while its node leads the
// meta shard: it probes every node over HTTP, adds every member to every shard (as a
// non-voting replica first), promotes caught-up replicas until each shard has as many
// voters as the replication factor allows, removes the replicas of nodes that are
// leaving or stayed down past DeadAfter once replacements vote, marks drained nodes
// removed, and spreads shard leaderships evenly over the voters.
package meta
