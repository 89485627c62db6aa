package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// The query and index calls of docs/api.md ("Queries", "Secondary indexes"), for the
// query suite. They are not part of Client: only the query suite needs them, and it asks
// its client for them (see queryClient).

// QueryRequest is the body of POST /v1/collections/{c}/query.
type QueryRequest struct {
	Filter      string      `json:"filter,omitempty"`
	Sort        []SortField `json:"sort,omitempty"`
	Limit       int         `json:"limit,omitempty"`
	Cursor      string      `json:"cursor,omitempty"`
	Fields      []string    `json:"fields,omitempty"`
	Count       bool        `json:"count,omitempty"`
	Explain     bool        `json:"explain,omitempty"`
	Consistency string      `json:"consistency,omitempty"`
}

// SortField is one key of a query's sort.
type SortField struct {
	Field string `json:"field"`
	Desc  bool   `json:"desc,omitempty"`
}

// QueryAnswer is a decoded query answer.
type QueryAnswer struct {
	Docs []struct {
		ID      string          `json:"id"`
		Version int64           `json:"version"`
		Doc     json.RawMessage `json:"doc"`
	} `json:"docs"`
	NextCursor string `json:"next_cursor"`
	Count      *int64 `json:"count"`
	Plan       *struct {
		Shards []ShardPlan `json:"shards"`
	} `json:"plan"`
}

// ShardPlan is one shard's part of an explained query.
type ShardPlan struct {
	Shard         uint64   `json:"shard"`
	Access        string   `json:"access"`
	Index         string   `json:"index"`
	SortFromIndex bool     `json:"sort_from_index"`
	Ranges        []string `json:"ranges"`
	Examined      int64    `json:"docs_examined"`
	Matched       int64    `json:"docs_matched"`
	EvalErrors    int64    `json:"eval_errors"`
	Millis        float64  `json:"time_ms"`
}

// IndexInfo is one index as GET /v1/collections/{c}/indexes lists it.
type IndexInfo struct {
	Name    string   `json:"name"`
	Fields  []string `json:"fields"`
	State   string   `json:"state"` // "building" or "ready"
	Entries int64    `json:"entries"`
}

// queryClient is what the query suite needs beyond Client.
type queryClient interface {
	// Query runs a query and returns the answer's body, read whole (so the latency of a
	// query includes the transfer of its answer) but not decoded.
	Query(ctx context.Context, coll string, q *QueryRequest) ([]byte, error)
	CreateIndex(ctx context.Context, coll, name string, fields []string) error
	Indexes(ctx context.Context, coll string) ([]IndexInfo, error)
	// GetRaw reads a document and returns the answer's body undecoded.
	GetRaw(ctx context.Context, coll, id string) ([]byte, error)
}

func (c *restClient) collURL(coll string) string {
	return c.base + "/v1/collections/" + url.PathEscape(coll)
}

func (c *restClient) Query(ctx context.Context, coll string, q *QueryRequest) ([]byte, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("bench: encode query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.collURL(coll)+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	_, resp, err := c.do(req, true)
	return resp, err
}

func (c *restClient) CreateIndex(ctx context.Context, coll, name string, fields []string) error {
	body, err := json.Marshal(struct {
		Fields []string `json:"fields"`
	}{fields})
	if err != nil {
		return fmt.Errorf("bench: encode index: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.collURL(coll)+"/indexes/"+url.PathEscape(name), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, _, err = c.do(req, false)
	return err
}

func (c *restClient) Indexes(ctx context.Context, coll string) ([]IndexInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.collURL(coll)+"/indexes", nil)
	if err != nil {
		return nil, err
	}
	_, body, err := c.do(req, true)
	if err != nil {
		return nil, err
	}
	var out struct {
		Indexes []IndexInfo `json:"indexes"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%w: indexes of %s: %.200q", ErrBadResponse, coll, body)
	}
	return out.Indexes, nil
}

func (c *restClient) GetRaw(ctx context.Context, coll, id string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.docURL(coll, id)+c.readQuery, nil)
	if err != nil {
		return nil, err
	}
	_, body, err := c.do(req, true)
	return body, err
}

// waitIndexes polls the collection's indexes until every one of names is ready, or ctx
// ends. It returns how long that took.
func waitIndexes(ctx context.Context, c queryClient, coll string, names []string) (time.Duration, error) {
	start := time.Now()
	wait := 100 * time.Millisecond
	for {
		ixs, err := c.Indexes(ctx, coll)
		if err == nil {
			ready := 0
			for _, name := range names {
				for _, ix := range ixs {
					if ix.Name == name && ix.State == "ready" {
						ready++
					}
				}
			}
			if ready == len(names) {
				return time.Since(start), nil
			}
			err = fmt.Errorf("%d of %d indexes ready (%+v)", ready, len(names), ixs)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), fmt.Errorf("bench: indexes of %s not ready after %s: %w (last: %v)", coll, time.Since(start).Round(time.Millisecond), ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}
