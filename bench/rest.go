package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// restClient speaks the REST API of docs/api.md to one node.
type restClient struct {
	base      string // "http://host:port"
	hc        *http.Client
	readQuery string // "" or "?consistency=local"
}

// newHTTPClient returns an HTTP client tuned for conns concurrent requests per host.
func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // benchmarks talk to the target directly
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr}
}

// newRESTClient returns a client of the node at addr ("host:port" or an http(s) URL).
// consistency is the read consistency ("" = the server default, linearizable; "local").
func newRESTClient(addr string, hc *http.Client, consistency string) *restClient {
	base := strings.TrimRight(addr, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	c := &restClient{base: base, hc: hc}
	if consistency == "local" {
		c.readQuery = "?consistency=" + url.QueryEscape(consistency)
	}
	return c
}

func (c *restClient) docURL(coll, id string) string {
	return c.base + "/v1/collections/" + url.PathEscape(coll) + "/docs/" + url.PathEscape(id)
}

// do sends a request and returns the body of a 2xx answer; other answers become *APIError.
func (c *restClient) do(req *http.Request, keep bool) (int, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, nil, apiError(resp.StatusCode, body)
	}
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func apiError(status int, body []byte) *APIError {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return &APIError{Status: status, Message: strings.TrimSpace(string(body))}
	}
	return &APIError{Status: status, Code: e.Error.Code, Message: e.Error.Message}
}

func (c *restClient) write(ctx context.Context, method, u string, body []byte, hdr map[string]string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	_, resp, err := c.do(req, true)
	if err != nil {
		return 0, err
	}
	var wr struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(resp, &wr); err != nil || wr.Version < 1 {
		return 0, fmt.Errorf("%w: %s %s: write result %.200q", ErrBadResponse, method, u, resp)
	}
	return wr.Version, nil
}

var createOnlyHeader = map[string]string{"If-None-Match": "*"}

func (c *restClient) Put(ctx context.Context, coll, id string, doc []byte, createOnly bool) (int64, error) {
	var hdr map[string]string
	if createOnly {
		hdr = createOnlyHeader
	}
	return c.write(ctx, http.MethodPut, c.docURL(coll, id), doc, hdr)
}

func (c *restClient) Patch(ctx context.Context, coll, id string, patch []byte) (int64, error) {
	return c.write(ctx, http.MethodPatch, c.docURL(coll, id), patch, nil)
}

func (c *restClient) Get(ctx context.Context, coll, id string, decode bool) (*Document, error) {
	return c.get(ctx, c.docURL(coll, id)+c.readQuery, decode)
}

func (c *restClient) get(ctx context.Context, u string, decode bool) (*Document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	_, body, err := c.do(req, decode)
	if err != nil || !decode {
		return nil, err
	}
	var d struct {
		ID      string            `json:"id"`
		Version int64             `json:"version"`
		Doc     map[string]string `json:"doc"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, &VerifyError{Kind: VerifyBadJSON, ID: u, Detail: err.Error()}
	}
	return &Document{ID: d.ID, Version: d.Version, Fields: d.Doc}, nil
}

func (c *restClient) Batch(ctx context.Context, writes []BatchWrite) ([]BatchResult, error) {
	body := make([]byte, 0, 64+len(writes)*(96+len(writes[0].Doc)))
	body = append(body, `{"writes":[`...)
	for i, w := range writes {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"op":"put","collection":`...)
		body = strconv.AppendQuote(body, w.Collection)
		body = append(body, `,"id":`...)
		body = strconv.AppendQuote(body, w.ID)
		body = append(body, `,"doc":`...)
		body = append(body, w.Doc...)
		if w.IfNoneMatch {
			body = append(body, `,"if_none_match":true`...)
		}
		body = append(body, '}')
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	_, resp, err := c.do(req, true)
	if err != nil {
		return nil, err
	}
	var br struct {
		Results []struct {
			Status  int   `json:"status"`
			Version int64 `json:"version"`
			Error   struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp, &br); err != nil || len(br.Results) != len(writes) {
		return nil, fmt.Errorf("%w: batch of %d: results %.200q", ErrBadResponse, len(writes), resp)
	}
	out := make([]BatchResult, len(writes))
	for i, r := range br.Results {
		out[i] = BatchResult{Status: r.Status, Version: r.Version, Code: r.Error.Code}
		if r.Status >= 400 && out[i].Code == "" {
			out[i].Code = "http_" + strconv.Itoa(r.Status)
		}
	}
	return out, nil
}

// Ready polls GET /readyz until it answers 200 or ctx ends.
func (c *restClient) Ready(ctx context.Context) error {
	var last error
	wait := 50 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
		if err != nil {
			return err
		}
		if _, _, last = c.do(req, false); last == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %s: %w (last: %v)", ErrNotReady, c.base, ctx.Err(), last)
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}
