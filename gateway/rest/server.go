package rest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/materializer"
	"github.com/aerolithsdb/aerolith/meta"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Store is what the REST gateway needs from the database.
type Store interface {
	Write(ctx context.Context, principal string, w db.Write) (db.Result, error)
	Batch(ctx context.Context, principal string, ws []db.Write, idempotencyKey string) ([]db.ItemResult, error)
	Get(ctx context.Context, collection, id string, c db.Consistency) (db.Doc, error)
	History(ctx context.Context, collection, id string, c db.Consistency) ([]db.Version, error)
	Collections(ctx context.Context, c db.Consistency) ([]materializer.CollectionCount, error)
	Query(ctx context.Context, r db.QueryRequest) (*db.QueryResult, error)
	CreateIndex(ctx context.Context, coll, name string, fields []string) (bool, error)
	DropIndex(ctx context.Context, coll, name string) error
	Indexes(ctx context.Context, coll string, c db.Consistency) ([]db.Index, error)
	Events(ctx context.Context, r db.EventsRequest) (*db.EventsPage, error)
	GetAsOf(ctx context.Context, collection, id string, a *db.AsOf, c db.Consistency) (db.Doc, error)
	Keys() []db.PublicKey
	Verify(ctx context.Context, shard, from, to uint64) (audit.Report, error)
	Export(ctx context.Context, w io.Writer) error
	Shards() int
	StateDigest() (db.StateDigest, error)
	Tiers() db.TierStats
	Redact(ctx context.Context, principal, collection, id, reason string) (db.Result, error)
	Ready() bool
	Cluster(ctx context.Context) db.ClusterView
	LocalApplied() meta.Probe
	Join(ctx context.Context, r db.JoinRequest) (meta.Node, error)
	Decommission(ctx context.Context, id uint64) (meta.Node, error)
	Member(id uint64) (meta.Node, error)
	SetReplicationFactor(ctx context.Context, rf int) error
	TransferLeader(ctx context.Context, shard, to uint64) error
	PlaceShard(ctx context.Context, shard, node uint64, absent bool) error
	SetHosting(ctx context.Context, mode string) error
}

// Config configures a Server.
type Config struct {
	Store    Store // required
	Limits   gateway.Limits
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer   // served at /metrics when set
	Registry prometheus.Registerer // the gateway's own metrics are registered here when set
	// Routes, when set, adds routes of other gateways that share the HTTP port (the change
	// streams of gateway/ws); it is called after the REST routes, before the 404 catch-all.
	Routes func(fiber.Router)
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("rest: store is required"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rest: %w", err))
	}
	return errors.Join(errs...)
}

// Server is the REST gateway.
type Server struct {
	cfg     Config
	app     *fiber.App
	log     *slog.Logger
	metrics *metrics
	conns   *conns
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry)}
	s.app = fiber.New(fiber.Config{
		// The routes refuse a body over the configured limit with the API's error
		// (limitBody); one far beyond it is refused while it is read.
		BodyLimit:             cfg.Limits.MaxBodyBytes + 1<<20,
		Immutable:             true,
		UnescapePath:          true,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleFiberError,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	// On shutdown, answer the request in flight on each keep-alive connection with
	// "Connection: close" and close it: otherwise clients that keep sending hold the
	// graceful shutdown open until its deadline.
	s.app.Server().CloseOnShutdown = true
	s.conns = newConns()
	s.app.Server().ConnState = s.conns.state
	s.app.Use(s.conns.track, s.observe)
	v1 := s.app.Group("/v1", s.limitBody)
	v1.Get("/collections", s.collections)
	v1.Post("/collections/:c/docs", s.create)
	v1.Put("/collections/:c/docs/:id", s.put)
	v1.Get("/collections/:c/docs/:id", s.get)
	v1.Patch("/collections/:c/docs/:id", s.patch)
	v1.Delete("/collections/:c/docs/:id", s.delete)
	v1.Get("/collections/:c/docs/:id/history", s.history)
	v1.Post("/collections/:c/docs/:id/redact", s.redact)
	v1.Post("/batch", s.batch)
	v1.Post("/collections/:c/query", s.query)
	v1.Get("/collections/:c/indexes", s.indexes)
	v1.Put("/collections/:c/indexes/:name", s.createIndex)
	v1.Delete("/collections/:c/indexes/:name", s.dropIndex)
	v1.Get("/events", s.events)
	v1.Get("/audit/keys", s.auditKeys)
	v1.Get("/audit/verify", s.auditVerify)
	v1.Get("/audit/export", s.auditExport)
	v1.Get("/admin/digest", s.digest)
	v1.Get("/cluster", s.cluster)
	v1.Get("/cluster/local", s.clusterLocal)
	v1.Post("/cluster/nodes", s.join)
	v1.Get("/cluster/nodes/:id", s.member)
	v1.Delete("/cluster/nodes/:id", s.decommission)
	v1.Put("/cluster/replication-factor", s.replicationFactor)
	v1.Put("/cluster/hosting", s.hosting)
	v1.Post("/cluster/shards/:shard/leader", s.transferLeader)
	v1.Put("/cluster/shards/:shard/replicas/:id", s.placeShard)
	v1.Delete("/cluster/shards/:shard/replicas/:id", s.placeShard)
	v1.Get("/tiers", func(c *fiber.Ctx) error { return c.JSON(s.cfg.Store.Tiers()) })
	s.xdcRoutes(v1)
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.ready)
	if cfg.Gatherer != nil {
		s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	if cfg.Routes != nil {
		cfg.Routes(s.app)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return s.fail(c, gateway.ErrorInfo{HTTP: fiber.StatusNotFound, Code: gateway.CodeNotFound, Message: "no such route: " + c.Method() + " " + c.Path()})
	})
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections and waits for in-flight requests until ctx ends.
//
// It stops accepting connections, lets the requests in the handlers finish (bounded by
// ctx), then closes the connections left: they carry no request being answered.
func (s *Server) Shutdown(ctx context.Context) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.conns.closeWhenIdle(ctx, stop)
	}()
	err := s.app.ShutdownWithContext(ctx)
	close(stop)
	<-done
	return err
}

// App returns the fiber app, for in-process tests (App().Test).
func (s *Server) App() *fiber.App { return s.app }

// principal establishes who is calling; gateway.Authenticate is the one place that decides.
func (s *Server) principal(c *fiber.Ctx) (string, error) {
	return gateway.Authenticate(c.Get(fiber.HeaderAuthorization))
}

type writeResponse struct {
	Collection string       `json:"collection"`
	ID         string       `json:"id"`
	Version    uint64       `json:"version"`
	TS         string       `json:"ts"`
	Position   log.Position `json:"position"`
}

func toWriteResponse(r db.Result) writeResponse {
	return writeResponse{Collection: r.Collection, ID: r.ID, Version: r.Version, TS: r.TS.String(), Position: r.Position}
}

func (s *Server) put(c *fiber.Ctx) error {
	body, err := s.object(c, c.Body())
	if err != nil {
		return s.error(c, err)
	}
	w := db.Write{Op: log.OpPut, Collection: c.Params("c"), ID: c.Params("id"), Body: body}
	if err := conditions(c, &w); err != nil {
		return s.error(c, err)
	}
	return s.write(c, w)
}

func (s *Server) create(c *fiber.Ctx) error {
	body, err := s.object(c, c.Body())
	if err != nil {
		return s.error(c, err)
	}
	p, err := s.principal(c)
	if err != nil {
		return s.error(c, err)
	}
	w := db.Write{Op: log.OpPut, Collection: c.Params("c"), ID: db.NewID(time.Now()), Body: body, IfNoneMatch: true}
	if w.IdempotencyKey = c.Get("Idempotency-Key"); w.IdempotencyKey != "" {
		// A retried create must name the same document to be answered, not repeated.
		w.ID = db.IDFromKey(p, w.IdempotencyKey)
	}
	return s.write(c, w)
}

func (s *Server) patch(c *fiber.Ctx) error {
	body, err := s.object(c, c.Body())
	if err != nil {
		return s.error(c, err)
	}
	w := db.Write{Op: log.OpPatch, Collection: c.Params("c"), ID: c.Params("id"), Body: body}
	if err := conditions(c, &w); err != nil {
		return s.error(c, err)
	}
	return s.write(c, w)
}

func (s *Server) delete(c *fiber.Ctx) error {
	w := db.Write{Op: log.OpDelete, Collection: c.Params("c"), ID: c.Params("id")}
	if err := conditions(c, &w); err != nil {
		return s.error(c, err)
	}
	return s.write(c, w)
}

func (s *Server) write(c *fiber.Ctx, w db.Write) error {
	p, err := s.principal(c)
	if err != nil {
		return s.error(c, err)
	}
	r, err := s.cfg.Store.Write(c.UserContext(), p, w)
	if err != nil {
		return s.error(c, err)
	}
	status := fiber.StatusOK
	if r.Created {
		status = fiber.StatusCreated
	}
	c.Set(fiber.HeaderETag, etag(r.Version))
	return c.Status(status).JSON(toWriteResponse(r))
}

// conditions reads If-Match, If-None-Match and Idempotency-Key.
func conditions(c *fiber.Ctx, w *db.Write) error {
	if v := c.Get(fiber.HeaderIfMatch); v != "" {
		n, err := parseETag(v)
		if err != nil {
			return err
		}
		w.IfMatch, w.HasIfMatch = n, true
	}
	if v := c.Get(fiber.HeaderIfNoneMatch); v != "" {
		if strings.TrimSpace(v) != "*" {
			return fmt.Errorf("%w: If-None-Match supports only *", db.ErrInvalidArgument)
		}
		w.IfNoneMatch = true
	}
	w.IdempotencyKey = c.Get("Idempotency-Key")
	w.Resolves = resolves(c)
	return nil
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

func parseETag(v string) (uint64, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: If-Match takes a version number, got %q", db.ErrInvalidArgument, v)
	}
	return n, nil
}

type docResponse struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Version    uint64          `json:"version"`
	TS         string          `json:"ts"`
	Doc        json.RawMessage `json:"doc"`
}

func consistency(c *fiber.Ctx) (db.Consistency, error) {
	return db.ParseConsistency(c.Query("consistency"))
}

func (s *Server) get(c *fiber.Ctx) error {
	cons, err := consistency(c)
	if err != nil {
		return s.error(c, err)
	}
	asOf, err := db.ParseAsOf(c.Query("as_of"))
	if err != nil {
		return s.error(c, err)
	}
	var d db.Doc
	if asOf != nil {
		d, err = s.cfg.Store.GetAsOf(c.UserContext(), c.Params("c"), c.Params("id"), asOf, cons)
	} else {
		d, err = s.cfg.Store.Get(c.UserContext(), c.Params("c"), c.Params("id"), cons)
	}
	if err != nil {
		return s.error(c, err)
	}
	c.Set(fiber.HeaderETag, etag(d.Version))
	return c.JSON(docResponse{Collection: d.Collection, ID: d.ID, Version: d.Version, TS: d.TS.String(), Doc: d.Body})
}

type versionResponse struct {
	Version   uint64          `json:"version"`
	Op        string          `json:"op"`
	TS        string          `json:"ts"`
	Principal string          `json:"principal"`
	Position  log.Position    `json:"position"`
	Doc       json.RawMessage `json:"doc"`
	Redacted  bool            `json:"redacted,omitempty"`
}

func (s *Server) history(c *fiber.Ctx) error {
	cons, err := consistency(c)
	if err != nil {
		return s.error(c, err)
	}
	vs, err := s.cfg.Store.History(c.UserContext(), c.Params("c"), c.Params("id"), cons)
	if err != nil {
		return s.error(c, err)
	}
	out := make([]versionResponse, len(vs))
	for i, v := range vs {
		out[i] = versionResponse{Version: v.Version, Op: v.Op.String(), TS: v.TS.String(), Principal: v.Principal, Position: v.Position, Doc: v.Body, Redacted: v.Redacted}
		if v.Body == nil {
			out[i].Doc = json.RawMessage("null")
		}
	}
	return c.JSON(fiber.Map{"collection": c.Params("c"), "id": c.Params("id"), "versions": out})
}

func (s *Server) collections(c *fiber.Ctx) error {
	cons, err := consistency(c)
	if err != nil {
		return s.error(c, err)
	}
	cols, err := s.cfg.Store.Collections(c.UserContext(), cons)
	if err != nil {
		return s.error(c, err)
	}
	type col struct {
		Name  string `json:"name"`
		Count int64  `json:"count"`
	}
	out := make([]col, len(cols))
	for i, cc := range cols {
		out[i] = col{Name: cc.Name, Count: cc.Count}
	}
	return c.JSON(fiber.Map{"collections": out})
}

type batchWrite struct {
	Op          string          `json:"op"`
	Collection  string          `json:"collection"`
	ID          string          `json:"id"`
	Doc         json.RawMessage `json:"doc"`
	Patch       json.RawMessage `json:"patch"`
	IfMatch     *uint64         `json:"if_match"`
	IfNoneMatch bool            `json:"if_none_match"`
	Resolves    []string        `json:"resolves"`
}

type batchResult struct {
	Status int `json:"status"`
	*writeResponse
	Error *errorBody `json:"error,omitempty"`
}

func (s *Server) batch(c *fiber.Ctx) error {
	if err := s.checkJSON(c.Body()); err != nil {
		return s.error(c, err)
	}
	var req struct {
		Writes []batchWrite `json:"writes"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return s.error(c, fmt.Errorf("%w: %v", db.ErrInvalidArgument, err))
	}
	ws := make([]db.Write, len(req.Writes))
	for i, bw := range req.Writes {
		op, ok := log.ParseOp(bw.Op)
		if !ok {
			return s.error(c, fmt.Errorf("%w: writes[%d].op must be put, patch or delete", db.ErrInvalidArgument, i))
		}
		w := db.Write{Op: op, Collection: bw.Collection, ID: bw.ID, IfNoneMatch: bw.IfNoneMatch}
		switch op {
		case log.OpPut:
			w.Body = compact(bw.Doc)
		case log.OpPatch:
			w.Body = compact(bw.Patch)
		}
		if bw.IfMatch != nil {
			w.IfMatch, w.HasIfMatch = *bw.IfMatch, true
		}
		w.Resolves = trimAll(bw.Resolves)
		ws[i] = w
	}
	p, err := s.principal(c)
	if err != nil {
		return s.error(c, err)
	}
	res, err := s.cfg.Store.Batch(c.UserContext(), p, ws, c.Get("Idempotency-Key"))
	if err != nil {
		return s.error(c, err)
	}
	out := make([]batchResult, len(res))
	for i, r := range res {
		if r.Err != nil {
			info := s.lookup(c, r.Err)
			out[i] = batchResult{Status: info.HTTP, Error: toErrorBody(info)}
			continue
		}
		wr := toWriteResponse(r.Result)
		out[i] = batchResult{Status: fiber.StatusOK, writeResponse: &wr}
		if r.Result.Created {
			out[i].Status = fiber.StatusCreated
		}
	}
	return c.JSON(fiber.Map{"results": out})
}

func compact(b json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b // the database rejects it with invalid_document
	}
	return buf.Bytes()
}

func (s *Server) ready(c *fiber.Ctx) error {
	if !s.cfg.Store.Ready() {
		return s.fail(c, gateway.ErrorInfo{HTTP: fiber.StatusServiceUnavailable, Code: "unavailable", Message: "not every shard has a leader"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

var (
	errInvalidJSON = errors.New("rest: invalid JSON")
	errTooDeep     = errors.New("rest: JSON too deep")
)

// checkJSON rejects bodies that are not valid JSON or nest too deeply.
func (s *Server) checkJSON(b []byte) error {
	if d := gateway.JSONDepth(b); d > s.cfg.Limits.MaxJSONDepth {
		return fmt.Errorf("%w: nesting depth %d exceeds the limit of %d", errTooDeep, d, s.cfg.Limits.MaxJSONDepth)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return fmt.Errorf("%w: %v", errInvalidJSON, err)
	}
	return nil
}

// object validates a document or patch body and returns it compacted.
func (s *Server) object(c *fiber.Ctx, b []byte) ([]byte, error) {
	if err := s.checkJSON(b); err != nil {
		return nil, err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: the body must be a JSON object", db.ErrInvalidDocument)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidJSON, err)
	}
	return buf.Bytes(), nil
}

type errorBody struct {
	Code           string  `json:"code"`
	Message        string  `json:"message"`
	CurrentVersion *uint64 `json:"current_version,omitempty"`
	Line           int     `json:"line,omitempty"`
	Column         int     `json:"column,omitempty"`
}

func toErrorBody(info gateway.ErrorInfo) *errorBody {
	return &errorBody{Code: info.Code, Message: info.Message, CurrentVersion: info.CurrentVersion, Line: info.Line, Column: info.Column}
}

func (s *Server) lookup(c *fiber.Ctx, err error) gateway.ErrorInfo {
	switch {
	case errors.Is(err, errInvalidJSON):
		return gateway.ErrorInfo{HTTP: fiber.StatusBadRequest, Code: gateway.CodeInvalidJSON, Message: err.Error()}
	case errors.Is(err, errTooDeep):
		return gateway.ErrorInfo{HTTP: fiber.StatusBadRequest, Code: gateway.CodeJSONTooDeep, Message: err.Error()}
	}
	info := gateway.Lookup(err)
	if info.Code == gateway.CodeInternal {
		id := requestID()
		s.log.Error("internal error", "request_id", id, "method", c.Method(), "path", c.Path(), "err", err)
		info.Message = "internal error; request id " + id
	}
	return info
}

func (s *Server) error(c *fiber.Ctx, err error) error { return s.fail(c, s.lookup(c, err)) }

func (s *Server) fail(c *fiber.Ctx, info gateway.ErrorInfo) error {
	return c.Status(info.HTTP).JSON(fiber.Map{"error": toErrorBody(info)})
}

// limitBody refuses a public request whose body is over Limits.MaxBodyBytes.
func (s *Server) limitBody(c *fiber.Ctx) error {
	if len(c.Body()) > s.cfg.Limits.MaxBodyBytes {
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}

// handleFiberError answers errors raised by fiber itself (body limit, bad method).
func (s *Server) handleFiberError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return s.fail(c, gateway.ErrorInfo{HTTP: fe.Code, Code: gateway.CodeBodyTooLarge,
				Message: fmt.Sprintf("request body exceeds %d bytes", s.cfg.Limits.MaxBodyBytes)})
		case fiber.StatusMethodNotAllowed:
			return s.fail(c, gateway.ErrorInfo{HTTP: fe.Code, Code: gateway.CodeMethodNotAllowed, Message: fe.Message})
		case fiber.StatusNotFound:
			return s.fail(c, gateway.ErrorInfo{HTTP: fe.Code, Code: gateway.CodeNotFound, Message: fe.Message})
		}
		if fe.Code < 500 {
			return s.fail(c, gateway.ErrorInfo{HTTP: fe.Code, Code: "invalid_argument", Message: fe.Message})
		}
	}
	return s.error(c, err)
}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
