package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

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
	return root
}
