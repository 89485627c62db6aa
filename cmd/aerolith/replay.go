package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/db"
	"github.com/spf13/cobra"
)

func newReplayCmd() *cobra.Command {
	cf := &clientFlags{}
	var to, out, file string
	var shards int
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild the materialized store from the event history into a fresh directory and print its state digest",
		Long: `Replay reads the event history (from a server's audit export, or from an export file with
--file), keeps the events up to --to (an RFC 3339 time or a resume token; default: all),
applies them in order to an empty store in --out, checks that every re-appended event is
identical to the original (hash included), and prints the state digest. It equals the
digest GET /v1/admin/digest reports for the same position.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError(errors.New("--out is required"))
			}
			at, err := db.ParseAsOf(to)
			if err != nil {
				return usageError(err)
			}
			var r io.Reader
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else {
				c, err := cf.client()
				if err != nil {
					return err
				}
				if shards == 0 {
					var d db.StateDigest
					if err := c.getJSON(cmd, "/v1/admin/digest", nil, &d); err != nil {
						return err
					}
					shards = len(d.Shards)
				}
				body, err := c.export(cmd)
				if err != nil {
					return err
				}
				defer body.Close()
				r = body
			}
			events, err := audit.ReadEvents(r)
			if err != nil {
				return err
			}
			if shards == 0 {
				for s := range events {
					shards = max(shards, int(s))
				}
			}
			if at != nil {
				events = db.Cut(events, at)
			}
			digest, err := db.Replay(out, shards, events)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(digest)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cf.addr, "addr", envOr(addrEnv, defaultAddr), "server to read the history from (env "+addrEnv+")")
	f.DurationVar(&cf.timeout, "timeout", defaultTimeout, "timeout of the digest request")
	f.StringVar(&to, "to", "", "replay up to this RFC 3339 time or resume token (default: everything)")
	f.StringVar(&out, "out", "", "fresh directory for the rebuilt store")
	f.StringVar(&file, "file", "", "read the history from an export file (aerolith audit export) instead of a server")
	f.IntVar(&shards, "shards", 0, "shard count (default: the server's, or the highest shard in the file)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
