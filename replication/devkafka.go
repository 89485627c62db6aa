package replication

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DevKafka is an in-process Kafka-protocol broker (franz-go's kfake) for trying
// replication on one machine and for tests. It is not a production broker.
type DevKafka struct {
	c *kfake.Cluster
}

// StartDevKafka starts a one-broker cluster listening on addr (host:port; port 0 picks
// one). With dataDir set, topics, records and committed offsets are kept there and
// reloaded by the next StartDevKafka on the same directory.
func StartDevKafka(addr, dataDir string) (*DevKafka, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("replication: dev kafka address %q: %w", addr, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.DefaultNumPartitions(4),
		kfake.AllowAutoTopicCreation(),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("replication: dev kafka: %w", err)
	}
	return &DevKafka{c: c}, nil
}

// Addr returns the address the broker listens on.
func (k *DevKafka) Addr() string { return k.c.ListenAddrs()[0] }

// Close stops the broker (saving its state when it has a data dir). Idempotent.
func (k *DevKafka) Close() { k.c.Close() }
