package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"

	"github.com/aerolithsdb/aerolith/node"
)

// Config of a throwaway node. The zero value is a node with the server's defaults.
type Config struct {
	// ParentDir is where the temporary data directory is made (default: os.TempDir()).
	ParentDir string
	// Shards is the number of raft shards (default: the node's default).
	Shards int
	// Logger for the node (default: discards).
	Logger *slog.Logger
}

// Node is a running throwaway node.
type Node struct {
	n      *node.Node
	dir    string
	closed bool
}

// Start creates a temporary data directory and starts a single node in it, listening on
// loopback. It returns once the node is ready.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	dir, err := os.MkdirTemp(cfg.ParentDir, "aerolith-bench-*")
	if err != nil {
		return nil, fmt.Errorf("embedded: data dir: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The raft port is picked by binding port 0 and closing it, so another process may
	// take it in between; retry a few times when that happens.
	for attempt := 0; ; attempt++ {
		raft, err := freeLoopbackAddr()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		n, err := node.Start(ctx, node.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", RaftAddr: raft, Shards: cfg.Shards, Logger: logger})
		if err == nil {
			return &Node{n: n, dir: dir}, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 2 {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("embedded: start node: %w", err)
		}
	}
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("embedded: pick a port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("embedded: pick a port: %w", err)
	}
	return addr, nil
}

// Addr is the node's HTTP address (host:port).
func (n *Node) Addr() string { return n.n.HTTPAddr() }

// GRPCAddr is the node's gRPC address (host:port).
func (n *Node) GRPCAddr() string { return n.n.GRPCAddr() }

// Shards is the node's raft shard count.
func (n *Node) Shards() int { return n.n.DB().Shards() }

// Dir is the node's data directory (for the fsync probe).
func (n *Node) Dir() string { return n.dir }

// Close stops the node and removes its data directory. It is idempotent.
func (n *Node) Close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	err := n.n.Close()
	if rerr := os.RemoveAll(n.dir); rerr != nil && err == nil {
		err = fmt.Errorf("embedded: remove %s: %w", n.dir, rerr)
	}
	return err
}
