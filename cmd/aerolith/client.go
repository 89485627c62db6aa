package main

// The command-line client: one cobra command per REST call of docs/api.md. Each command
// shapes one request, prints the JSON answer indented on stdout, and turns an error answer
// into "<code>: <message>" (main prefixes "aerolith: " and exits 1). Bad arguments are usage
// errors (exit 2).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const (
	defaultAddr    = "http://127.0.0.1:7070"
	addrEnv        = "AEROLITH_ADDR"
	defaultTimeout = 10 * time.Second
	// maxReadBytes bounds what the client reads: one answer, or a body from stdin. The
	// history of a busy document is the largest answer; 256 MiB is far beyond any sane one.
	maxReadBytes = 256 << 20
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr    string
	timeout time.Duration
}

// writeFlags are the conditions and idempotency key a write may carry.
type writeFlags struct {
	ifMatch        string
	ifNoneMatch    bool
	idempotencyKey string
}

func newClientCmds() []*cobra.Command {
	cf := &clientFlags{}
	cmds := []*cobra.Command{
		newPutCmd(cf),
		newGetCmd(cf),
		newPatchCmd(cf),
		newDeleteCmd(cf),
		newHistoryCmd(cf),
		newCollectionsCmd(cf),
		newQueryCmd(cf),
		newIndexCmd(cf),
	}
	addr := os.Getenv(addrEnv)
	if addr == "" {
		addr = defaultAddr
	}
	for _, c := range cmds {
		f := c.PersistentFlags()
		f.StringVar(&cf.addr, "addr", addr, "server address, http://host:port or host:port (env "+addrEnv+")")
		f.DurationVar(&cf.timeout, "timeout", defaultTimeout, "give up on the request after this long")
	}
	return cmds
}

func newPutCmd(cf *clientFlags) *cobra.Command {
	var wf writeFlags
	var generateID bool
	cmd := &cobra.Command{
		Use:   "put COLLECTION ID [JSON|-]",
		Short: "Create or replace a document (body from the argument, or stdin when absent or -)",
		Long: "Create or replace a document. The body is the JSON argument, or stdin when it is\n" +
			"absent or \"-\". With --generate-id the server chooses the id:\n" +
			"  aerolith put COLLECTION --generate-id [JSON|-]",
		Args: func(cmd *cobra.Command, args []string) error {
			lo, hi := 2, 3
			if generateID {
				lo, hi = 1, 2
			}
			return argRange(args, lo, hi)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			method, path, rest := http.MethodPut, "", args[1:]
			if generateID {
				if wf.ifMatch != "" || wf.ifNoneMatch {
					return usageError(errors.New("--generate-id cannot be combined with --if-match or --if-none-match"))
				}
				method, path = http.MethodPost, docsPath(args[0])
			} else {
				path, rest = docPath(args[0], args[1]), args[2:]
			}
			body, err := readBody(cmd, rest)
			if err != nil {
				return err
			}
			h, err := wf.headers()
			if err != nil {
				return err
			}
			return c.do(cmd, method, path, nil, h, body)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&generateID, "generate-id", false, "let the server generate the id (POST)")
	f.StringVar(&wf.ifMatch, "if-match", "", "write only if the document is at this version")
	f.BoolVar(&wf.ifNoneMatch, "if-none-match", false, "create only: fail if the document exists")
	f.StringVar(&wf.idempotencyKey, "idempotency-key", "", "a retry with the same key returns the first result")
	return cmd
}

func newGetCmd(cf *clientFlags) *cobra.Command {
	var consistency string
	cmd := &cobra.Command{
		Use:   "get COLLECTION ID",
		Short: "Read a document",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 2, 2) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var q url.Values
			if consistency != "" {
				q = url.Values{"consistency": {consistency}}
			}
			return c.do(cmd, http.MethodGet, docPath(args[0], args[1]), q, nil, nil)
		},
	}
	cmd.Flags().StringVar(&consistency, "consistency", "", `"local" reads the local replica without a raft round (may be stale); default linearizable`)
	return cmd
}

func newPatchCmd(cf *clientFlags) *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "patch COLLECTION ID PATCH_JSON|-",
		Short: "Apply a JSON merge patch (RFC 7396) to a document",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 2, 3) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, err := readBody(cmd, args[2:])
			if err != nil {
				return err
			}
			h, err := wf.headers()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodPatch, docPath(args[0], args[1]), nil, h, body)
		},
	}
	f := cmd.Flags()
	f.StringVar(&wf.ifMatch, "if-match", "", "write only if the document is at this version")
	f.StringVar(&wf.idempotencyKey, "idempotency-key", "", "a retry with the same key returns the first result")
	return cmd
}

func newDeleteCmd(cf *clientFlags) *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "delete COLLECTION ID",
		Short: "Delete a document (the delete is an event; its history is kept)",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 2, 2) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			h, err := wf.headers()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodDelete, docPath(args[0], args[1]), nil, h, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&wf.ifMatch, "if-match", "", "delete only if the document is at this version")
	f.StringVar(&wf.idempotencyKey, "idempotency-key", "", "a retry with the same key returns the first result")
	return cmd
}

func newHistoryCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "history COLLECTION ID",
		Short: "List every version of a document, oldest first",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 2, 2) },
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodGet, docPath(args[0], args[1])+"/history", nil, nil, nil)
		},
	}
}

func newCollectionsCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "collections",
		Short: "List collections with their live document counts",
		Args:  func(_ *cobra.Command, args []string) error { return argRange(args, 0, 0) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd, http.MethodGet, "/v1/collections", nil, nil, nil)
		},
	}
}

func argRange(args []string, lo, hi int) error {
	switch {
	case len(args) < lo || len(args) > hi:
		if lo == hi {
			return usageError(fmt.Errorf("want %d argument(s), got %d", lo, len(args)))
		}
		return usageError(fmt.Errorf("want %d to %d arguments, got %d", lo, hi, len(args)))
	}
	for i, a := range args {
		// The JSON/- argument is the only one allowed to be empty-ish; names never are.
		if a == "" && i < lo {
			return usageError(fmt.Errorf("argument %d is empty", i+1))
		}
	}
	return nil
}

// readBody returns the JSON body: rest[0] when given and not "-", else stdin.
func readBody(cmd *cobra.Command, rest []string) ([]byte, error) {
	var body []byte
	if len(rest) > 0 && rest[0] != "-" {
		body = []byte(rest[0])
	} else {
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxReadBytes))
		if err != nil {
			return nil, fmt.Errorf("read body from stdin: %w", err)
		}
		body = b
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, usageError(errors.New("empty body: give the JSON document as an argument or on stdin"))
	}
	if !json.Valid(body) {
		return nil, usageError(errors.New("body is not valid JSON"))
	}
	return body, nil
}

// headers validates the write flags and returns the request headers they ask for.
func (wf *writeFlags) headers() (http.Header, error) {
	h := http.Header{}
	if wf.ifMatch != "" {
		v := strings.Trim(wf.ifMatch, `"`)
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return nil, usageError(fmt.Errorf("--if-match %q: want a version number", wf.ifMatch))
		}
		h.Set("If-Match", `"`+v+`"`)
	}
	if wf.ifNoneMatch {
		h.Set("If-None-Match", "*")
	}
	if k := wf.idempotencyKey; k != "" {
		if len(k) > 128 || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			return nil, usageError(fmt.Errorf("--idempotency-key: want 1-128 printable ASCII characters"))
		}
		h.Set("Idempotency-Key", k)
	}
	return h, nil
}

// escapeSegment escapes one path segment. "." and ".." are valid ids but dot-segments in
// a path, which URL normalization would remove, so their dots are percent-encoded.
func escapeSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

func docsPath(collection string) string {
	return "/v1/collections/" + escapeSegment(collection) + "/docs"
}

func docPath(collection, id string) string {
	return docsPath(collection) + "/" + escapeSegment(id)
}

// parseAddr accepts http(s)://host:port[/prefix] or host:port.
func parseAddr(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, usageError(fmt.Errorf("--addr: %w", err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, usageError(fmt.Errorf("--addr %q: scheme must be http or https", addr))
	}
	if u.Host == "" {
		return nil, usageError(fmt.Errorf("--addr %q: no host", addr))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, usageError(fmt.Errorf("--addr %q: no query or fragment allowed", addr))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

type client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
}

func (cf *clientFlags) client() (*client, error) {
	base, err := parseAddr(cf.addr)
	if err != nil {
		return nil, err
	}
	if cf.timeout <= 0 {
		return nil, usageError(fmt.Errorf("--timeout must be positive, got %s", cf.timeout))
	}
	return &client{base: base, http: &http.Client{}, timeout: cf.timeout}, nil
}

// apiError is an error answer of the REST API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// do sends one request and prints the answer. path is already escaped.
func (c *client) do(cmd *cobra.Command, method, path string, q url.Values, h http.Header, body []byte) error {
	status, raw, err := c.send(cmd.Context(), method, path, q, h, body, method != http.MethodGet)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("server answered %s with a body that is not JSON: %.200q", status, raw)
	}
	out.WriteByte('\n')
	_, err = cmd.OutOrStdout().Write(out.Bytes())
	return err
}

// send sends one request and returns the status line and body of a 2xx answer; other
// answers become an *apiError. path is already escaped. write says whether the request
// changes data (a query is a POST that does not), for the message of a lost answer.
func (c *client) send(ctx context.Context, method, path string, q url.Values, h http.Header, body []byte, write bool) (string, []byte, error) {
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return "", nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", nil, c.lostAnswer(write, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReadBytes))
	if err != nil {
		return "", nil, c.lostAnswer(write, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", nil, decodeError(resp, raw)
	}
	return resp.Status, raw, nil
}

// transportError explains a request that got no answer. A write that timed out may still
// have been applied, so the message says so.
func (c *client) transportError(method string, err error) error {
	return c.lostAnswer(method != http.MethodGet, err)
}

// lostAnswer is transportError for a request that is a write or not whatever its method.
func (c *client) lostAnswer(write bool, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		if write {
			return fmt.Errorf("no answer from %s within %s: the write may or may not have been applied; retry with the same --idempotency-key", c.base, c.timeout)
		}
		return fmt.Errorf("no answer from %s within %s", c.base, c.timeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("cannot connect to %s (is the server running? set --addr or %s): %w", c.base, addrEnv, oe.Err)
	}
	if write {
		return fmt.Errorf("connection to %s failed: %w (the write may or may not have been applied; retry with the same --idempotency-key)", c.base, err)
	}
	return fmt.Errorf("connection to %s failed: %w", c.base, err)
}

// decodeError turns an error answer into an *apiError. Answers that are not the API's error
// shape (a proxy's HTML page, say) keep their HTTP status as the code.
func decodeError(resp *http.Response, raw []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err == nil && e.Error.Code != "" {
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apiError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: msg}
}
