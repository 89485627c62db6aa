package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	cf := &clientFlags{}
	root := &cobra.Command{Use: "audit", Short: "Verify the tamper-evident history, online or from an export file"}
	addr := os.Getenv(addrEnv)
	if addr == "" {
		addr = defaultAddr
	}
	root.PersistentFlags().StringVar(&cf.addr, "addr", addr, "server address (env "+addrEnv+")")
	root.PersistentFlags().DurationVar(&cf.timeout, "timeout", defaultTimeout, "give up on a verify request after this long")

	var shard, from, to uint64
	var file string
	var keys []string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain and signed checkpoints: on the server, or offline with --file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var reports []audit.Report
			if file != "" {
				trusted, err := parseKeys(keys)
				if err != nil {
					return usageError(err)
				}
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				if reports, err = audit.VerifyExport(f, trusted); err != nil {
					return err
				}
			} else {
				c, err := cf.client()
				if err != nil {
					return err
				}
				q := url.Values{}
				for name, v := range map[string]uint64{"shard": shard, "from": from, "to": to} {
					if v != 0 {
						q.Set(name, fmt.Sprint(v))
					}
				}
				var out struct {
					Shards []audit.Report `json:"shards"`
				}
				if err := c.getJSON(cmd, "/v1/audit/verify", q, &out); err != nil {
					return err
				}
				reports = out.Shards
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"shards": reports}); err != nil {
				return err
			}
			for _, r := range reports {
				if !r.OK {
					return fmt.Errorf("shard %d: broken at %s: %s", r.Shard, r.Break.Position, r.Break.Reason)
				}
			}
			return nil
		},
	}
	verify.Flags().Uint64Var(&shard, "shard", 0, "only this shard (default: all)")
	verify.Flags().Uint64Var(&from, "from", 0, "first index (default: 1)")
	verify.Flags().Uint64Var(&to, "to", 0, "last index (default: the head)")
	verify.Flags().StringVar(&file, "file", "", "verify an export file offline, with no server")
	verify.Flags().StringSliceVar(&keys, "key", nil, "trusted public key KEYID=HEX (repeat); default: the keys in the file")

	var out string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write every event, signed checkpoint and public key as NDJSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError(errors.New("--out is required"))
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, err := c.export(cmd)
			if err != nil {
				return err
			}
			defer body.Close()
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d bytes to %s\n", n, out)
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "file to write")
	root.AddCommand(verify, export)
	return root
}

func parseKeys(specs []string) (map[string]ed25519.PublicKey, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := map[string]ed25519.PublicKey{}
	for _, s := range specs {
		id, hx, ok := strings.Cut(s, "=")
		pub, err := hex.DecodeString(hx)
		if !ok || err != nil || len(pub) != ed25519.PublicKeySize || audit.KeyID(pub) != id {
			return nil, fmt.Errorf("--key %q: want KEYID=HEX of an Ed25519 public key", s)
		}
		out[id] = pub
	}
	return out, nil
}

// getJSON fetches a JSON answer into v.
func (c *client) getJSON(cmd *cobra.Command, path string, q url.Values, v any) error {
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError("GET", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReadBytes))
	if err != nil {
		return c.transportError("GET", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, raw)
	}
	return json.Unmarshal(raw, v)
}

// export opens the server's audit export stream (NDJSON); it has no timeout, as an export
// of a long history takes as long as it takes.
func (c *client) export(cmd *cobra.Command) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), "GET", c.base.String()+"/v1/audit/export", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError("GET", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxReadBytes))
		return nil, decodeError(resp, raw)
	}
	return resp.Body, nil
}
