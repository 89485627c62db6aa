package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// parseMembers parses --initial-members: "1=host:port,2=host:port,…". Addresses are
// checked further (and against --node-id and --raft-addr) by the configuration's Validate.
func parseMembers(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	var errs []error
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		idText, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			errs = append(errs, fmt.Errorf("--initial-members: %q is not id=host:port", part))
			continue
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 {
			errs = append(errs, fmt.Errorf("--initial-members: %q: the id must be an integer > 0", part))
			continue
		}
		if prev, dup := out[id]; dup {
			errs = append(errs, fmt.Errorf("--initial-members: node %d is listed twice (%s and %s)", id, prev, addr))
			continue
		}
		out[id] = addr
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func newClusterCmd() *cobra.Command {
	cf := &clientFlags{}
	root := &cobra.Command{Use: "cluster", Short: "Inspect the cluster"}
	addr := os.Getenv(addrEnv)
	if addr == "" {
		addr = defaultAddr
	}
	root.PersistentFlags().StringVar(&cf.addr, "addr", addr, "server address, http://host:port or host:port (env "+addrEnv+")")
	root.PersistentFlags().DurationVar(&cf.timeout, "timeout", defaultTimeout, "give up on the request after this long")
	root.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Nodes, every shard's replicas and leader, and the node's applied index per shard (GET /v1/cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodGet, "/v1/cluster", nil, nil, nil)
		},
	})
	var wait time.Duration
	remove := &cobra.Command{
		Use:   "remove NODE-ID",
		Short: "Decommission a node: move its votes to other nodes, remove its replicas, mark it removed (DELETE /v1/cluster/nodes/{id})",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usageError(fmt.Errorf("node id %q: must be an integer > 0", args[0]))
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd, http.MethodDelete, "/v1/cluster/nodes/"+args[0], nil, nil, nil); err != nil || wait == 0 {
				return err
			}
			return waitRemoved(cmd.Context(), c, id, wait, cmd.ErrOrStderr())
		},
	}
	remove.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until the node is removed (0: do not wait)")
	root.AddCommand(remove)
	root.AddCommand(&cobra.Command{
		Use:   "replication-factor N",
		Short: "Set how many voters each shard should have (PUT /v1/cluster/replication-factor)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return usageError(fmt.Errorf("replication factor %q: not an integer", args[0]))
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]int{"replication_factor": n})
			return c.do(cmd, http.MethodPut, "/v1/cluster/replication-factor", nil, nil, body)
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "hosting all|placed",
		Short: "Hold every shard on every node (all), or each shard on as many nodes as it has voters, spread evenly (placed) (PUT /v1/cluster/hosting)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"hosting": args[0]})
			return c.do(cmd, http.MethodPut, "/v1/cluster/hosting", nil, nil, body)
		},
	})
	placeCmd := func(use, short, method string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, a := range args {
					if n, err := strconv.ParseUint(a, 10, 64); err != nil || n == 0 {
						return usageError(fmt.Errorf("%q: shard and node ids are integers > 0", a))
					}
				}
				c, err := cf.client()
				if err != nil {
					return err
				}
				return c.do(cmd, method, "/v1/cluster/shards/"+args[0]+"/replicas/"+args[1], nil, nil, nil)
			},
		}
	}
	root.AddCommand(placeCmd("place SHARD NODE-ID", "Place a shard on a node: it gets a replica that catches up from the leader (PUT /v1/cluster/shards/{shard}/replicas/{id})", http.MethodPut))
	root.AddCommand(placeCmd("unplace SHARD NODE-ID", "Move a shard off a node: its vote and replica go elsewhere, it drops the shard's data and serves it through other nodes (DELETE /v1/cluster/shards/{shard}/replicas/{id})", http.MethodDelete))
	return root
}

// waitRemoved polls GET /v1/cluster until node id is removed or wait passes.
func waitRemoved(ctx context.Context, c *client, id uint64, wait time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		_, raw, err := c.send(ctx, http.MethodGet, "/v1/cluster", nil, nil, nil, false)
		if err == nil {
			var st struct {
				Nodes []struct {
					ID    uint64 `json:"id"`
					State string `json:"state"`
				} `json:"nodes"`
			}
			if json.Unmarshal(raw, &st) == nil {
				for _, n := range st.Nodes {
					if n.ID == id && n.State != last {
						last = n.State
						fmt.Fprintf(out, "node %d: %s\n", id, n.State)
					}
				}
				if last == "removed" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d not removed after %s (state %q)", id, wait, last)
		case <-t.C:
		}
	}
}
