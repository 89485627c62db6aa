package main

// The query and index commands of the command-line client (docs/api.md, "Queries" and
// "Secondary indexes"). They follow client.go: one request per command (or one per page
// with query --all), answers printed as JSON, error answers as "<code>: <message>", bad
// arguments as usage errors.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// querySort is one key of a query's sort, as the API takes it.
type querySort struct {
	Field string `json:"field"`
	Desc  bool   `json:"desc,omitempty"`
}

// queryBody is the body of POST /v1/collections/{c}/query.
type queryBody struct {
	Filter      string      `json:"filter,omitempty"`
	Sort        []querySort `json:"sort,omitempty"`
	Limit       int         `json:"limit,omitempty"`
	Cursor      string      `json:"cursor,omitempty"`
	Fields      []string    `json:"fields,omitempty"`
	Count       bool        `json:"count,omitempty"`
	Explain     bool        `json:"explain,omitempty"`
	Consistency string      `json:"consistency,omitempty"`
	AsOf        string      `json:"as_of,omitempty"`
}

// parseSort reads "-total,+name,id": fields separated by commas, each with an optional
// "-" (descending) or "+" (ascending, the default).
func parseSort(s string) ([]querySort, error) {
	if s == "" {
		return nil, nil
	}
	var out []querySort
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		k := querySort{Field: part}
		switch {
		case strings.HasPrefix(part, "-"):
			k = querySort{Field: part[1:], Desc: true}
		case strings.HasPrefix(part, "+"):
			k.Field = part[1:]
		}
		if k.Field == "" {
			return nil, fmt.Errorf("--sort %q: an empty field (want e.g. -total,+name)", s)
		}
		out = append(out, k)
	}
	return out, nil
}

func newQueryCmd(cf *clientFlags) *cobra.Command {
	var (
		b    queryBody
		sort string
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "query COLLECTION [FILTER]",
		Short: "Run a CEL filter over a collection (one page, or every page as NDJSON with --all)",
		Long: `Run a query: FILTER is a CEL expression over doc, id, version and ts (empty: every
document). Prints the answer (docs, next_cursor, plan) as JSON. Pass next_cursor back with
--cursor and the same filter and sort for the next page, or use --all to follow the cursors
and print every document as one JSON line (NDJSON).

Examples:
  aerolith query orders 'doc.status == "open" && doc.total > 100' --sort -total --limit 10
  aerolith query orders 'doc.customer == "c123"' --fields total,address.city --explain
  aerolith query orders 'doc.status == "open"' --count
  aerolith query orders --all > orders.ndjson`,
		Args: func(_ *cobra.Command, args []string) error { return argRange(args, 1, 2) },
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				b.Filter = args[1]
			}
			var err error
			if b.Sort, err = parseSort(sort); err != nil {
				return usageError(err)
			}
			f := cmd.Flags()
			if f.Changed("limit") && b.Limit < 1 {
				return usageError(fmt.Errorf("--limit %d: want a positive page size", b.Limit))
			}
			for _, p := range b.Fields {
				if strings.TrimSpace(p) == "" {
					return usageError(errors.New("--fields: an empty path"))
				}
			}
			switch b.Consistency {
			case "", "linearizable", "local":
			default:
				return usageError(fmt.Errorf("--consistency %q: want linearizable or local", b.Consistency))
			}
			if all && (b.Count || b.Explain) {
				return usageError(errors.New("--all prints documents: it cannot be combined with --count or --explain"))
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			path := "/v1/collections/" + escapeSegment(args[0]) + "/query"
			if !all {
				body, err := json.Marshal(b)
				if err != nil {
					return err
				}
				return c.do(cmd, http.MethodPost, path, nil, nil, body)
			}
			return queryAll(cmd, c, path, b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&sort, "sort", "", "sort fields, comma-separated, - for descending: -total,+name (ties are broken by id)")
	f.IntVar(&b.Limit, "limit", 0, "page size (default: the server's, 100; at most 1000)")
	f.StringVar(&b.Cursor, "cursor", "", "next_cursor of the previous page (same filter and sort)")
	f.StringSliceVar(&b.Fields, "fields", nil, "projection: only these paths, comma-separated (a,b.c)")
	f.BoolVar(&b.Count, "count", false, "answer with the number of matching documents instead of documents")
	f.BoolVar(&b.Explain, "explain", false, "include the plan: access path per shard, index, ranges, documents examined")
	f.StringVar(&b.Consistency, "consistency", "", `"local" queries the local replicas without a raft round (may be stale); default linearizable`)
	f.StringVar(&b.AsOf, "as-of", "", "query the collection as it was at this RFC 3339 time or position token")
	f.BoolVar(&all, "all", false, "follow next_cursor until the last page, printing each document as one JSON line")
	return cmd
}

// queryAll asks for page after page, printing every document as one compact JSON line,
// until a page comes back without a next cursor.
func queryAll(cmd *cobra.Command, c *client, path string, b queryBody) error {
	out := cmd.OutOrStdout()
	var line bytes.Buffer
	for {
		body, err := json.Marshal(b)
		if err != nil {
			return err
		}
		status, raw, err := c.send(cmd.Context(), http.MethodPost, path, nil, nil, body, false)
		if err != nil {
			return err
		}
		var page struct {
			Docs       []json.RawMessage `json:"docs"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("server answered %s with a body that is not a query page: %.200q", status, raw)
		}
		for _, d := range page.Docs {
			line.Reset()
			if err := json.Compact(&line, d); err != nil {
				return fmt.Errorf("server answered a document that is not JSON: %.200q", d)
			}
			line.WriteByte('\n')
			if _, err := out.Write(line.Bytes()); err != nil {
				return err
			}
		}
		if page.NextCursor == "" || len(page.Docs) == 0 {
			return nil
		}
		if page.NextCursor == b.Cursor {
			return fmt.Errorf("server answered the same next_cursor twice (%.80q): stopping", page.NextCursor)
		}
		b.Cursor = page.NextCursor
	}
}

func newIndexCmd(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index create|list|drop",
		Short: "Create, list or drop secondary indexes",
		Long: `Secondary indexes serve equality and range conjuncts and single-field sorts of
queries. A new index on a collection with documents is backfilled in the background; it is
used once "index list" shows it ready.

  aerolith index create orders by_status_total status total
  aerolith index list orders
  aerolith index drop orders by_status_total`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("index: unknown subcommand %q: want create, list or drop", args[0]))
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			return usageError(errors.New("index: want a subcommand: create, list or drop"))
		},
	}
	indexesPath := func(coll string) string { return "/v1/collections/" + escapeSegment(coll) + "/indexes" }
	create := &cobra.Command{
		Use:   "create COLLECTION NAME FIELD...",
		Short: "Create an index on 1 to 8 fields (dotted paths), in key order",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 3 {
				return usageError(fmt.Errorf("want COLLECTION NAME FIELD..., got %d argument(s)", len(args)))
			}
			return argRange(args, len(args), len(args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, err := json.Marshal(struct {
				Fields []string `json:"fields"`
			}{args[2:]})
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodPut, indexesPath(args[0])+"/"+escapeSegment(args[1]), nil, nil, body)
		},
	}
	var consistency string
	list := &cobra.Command{
		Use:   "list COLLECTION",
		Short: "List a collection's indexes with their state (building, ready) and entries",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 1, 1) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var q url.Values
			if consistency != "" {
				q = url.Values{"consistency": {consistency}}
			}
			return c.do(cmd, http.MethodGet, indexesPath(args[0]), q, nil, nil)
		},
	}
	list.Flags().StringVar(&consistency, "consistency", "", `"local" reads the local replica without a raft round; default linearizable`)
	drop := &cobra.Command{
		Use:   "drop COLLECTION NAME",
		Short: "Drop an index",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 2, 2) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodDelete, indexesPath(args[0])+"/"+escapeSegment(args[1]), nil, nil, nil)
		},
	}
	cmd.AddCommand(create, list, drop)
	return cmd
}
