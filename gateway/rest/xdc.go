package rest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
	"github.com/gofiber/fiber/v2"
)

// xdcStore is what the cross-datacenter routes need from the database.
type xdcStore interface {
	SetPolicy(ctx context.Context, collection string, p db.Policy) error
	Policy(ctx context.Context, collection string) (db.Policy, error)
	Conflicts(ctx context.Context, collection string, limit int, c db.Consistency) ([]db.Conflict, error)
	DocClock(ctx context.Context, collection, id string, c db.Consistency) (vclock.Clock, []db.Sibling, error)
	ContentDigest() (log.Hash, error)
}

// xdcRoutes adds, when the store supports them:
//
//	PUT /v1/collections/:c/policy            set the collection's replication policy
//	GET /v1/collections/:c/policy            read it (defaults when unset)
//	GET /v1/collections/:c/docs/:id/siblings the document's vector clock and siblings
//	GET /v1/conflicts?collection=…&limit=…   documents with open keep-both conflicts
func (s *Server) xdcRoutes(v1 fiber.Router) {
	st, ok := s.cfg.Store.(xdcStore)
	if !ok {
		return
	}
	v1.Put("/collections/:c/policy", func(c *fiber.Ctx) error {
		var p db.Policy
		if err := s.decodeStrict(c.Body(), &p); err != nil {
			return s.error(c, err)
		}
		if err := st.SetPolicy(c.UserContext(), c.Params("c"), p); err != nil {
			return s.error(c, err)
		}
		p, err := st.Policy(c.UserContext(), c.Params("c"))
		if err != nil {
			return s.error(c, err)
		}
		return c.JSON(policyResponse(c.Params("c"), p))
	})
	v1.Get("/collections/:c/policy", func(c *fiber.Ctx) error {
		p, err := st.Policy(c.UserContext(), c.Params("c"))
		if err != nil {
			return s.error(c, err)
		}
		return c.JSON(policyResponse(c.Params("c"), p))
	})
	v1.Get("/collections/:c/docs/:id/siblings", func(c *fiber.Ctx) error {
		cons, err := consistency(c)
		if err != nil {
			return s.error(c, err)
		}
		clock, sibs, err := st.DocClock(c.UserContext(), c.Params("c"), c.Params("id"), cons)
		if err != nil {
			return s.error(c, err)
		}
		return c.JSON(conflictResponse{Collection: c.Params("c"), ID: c.Params("id"), Clock: orEmpty(clock), Siblings: siblingsResponse(sibs)})
	})
	v1.Get("/conflicts", func(c *fiber.Ctx) error {
		cons, err := consistency(c)
		if err != nil {
			return s.error(c, err)
		}
		limit := 100
		if v := c.Query("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
				return s.error(c, fmt.Errorf("%w: limit must be 1..1000", db.ErrInvalidArgument))
			}
		}
		coll := c.Query("collection")
		if coll == "" {
			return s.error(c, fmt.Errorf("%w: collection is required", db.ErrInvalidArgument))
		}
		cs, err := st.Conflicts(c.UserContext(), coll, limit, cons)
		if err != nil {
			return s.error(c, err)
		}
		out := make([]conflictResponse, len(cs))
		for i, cf := range cs {
			out[i] = conflictResponse{Collection: cf.Collection, ID: cf.ID, Clock: orEmpty(cf.Clock), Siblings: siblingsResponse(cf.Siblings)}
		}
		return c.JSON(fiber.Map{"collection": coll, "conflicts": out})
	})
}

func policyResponse(coll string, p db.Policy) fiber.Map {
	replicate := any(p.Replicate)
	if p.Replicate == nil {
		replicate = "all"
	}
	m := fiber.Map{"collection": coll, "replicate": replicate, "mode": p.Mode, "conflict": p.Conflict}
	if len(p.Priority) > 0 {
		m["priority"] = p.Priority
	}
	return m
}

type siblingResponse struct {
	ID      string          `json:"id"`
	Origin  string          `json:"origin"`
	TS      string          `json:"ts"`
	Clock   vclock.Clock    `json:"clock"`
	Deleted bool            `json:"deleted,omitempty"`
	Visible bool            `json:"visible"`
	Doc     json.RawMessage `json:"doc"`
}

type conflictResponse struct {
	Collection string            `json:"collection"`
	ID         string            `json:"id"`
	Clock      vclock.Clock      `json:"clock"`
	Siblings   []siblingResponse `json:"siblings"`
}

func siblingsResponse(sibs []db.Sibling) []siblingResponse {
	out := make([]siblingResponse, len(sibs))
	for i, s := range sibs {
		out[i] = siblingResponse{ID: s.ID, Origin: s.Origin, TS: s.TS.String(), Clock: s.Clock, Deleted: s.Deleted, Visible: s.Visible, Doc: s.Body}
		if s.Deleted || s.Body == nil {
			out[i].Doc = json.RawMessage("null")
		}
	}
	return out
}

func orEmpty(c vclock.Clock) vclock.Clock {
	if c == nil {
		return vclock.Clock{}
	}
	return c
}

// resolves reads the Resolves header: the comma-separated sibling ids ("dc:counter") a
// write replaces. The database checks them.
func resolves(c *fiber.Ctx) []string {
	v := strings.TrimSpace(c.Get("Resolves"))
	if v == "" {
		return nil
	}
	return trimAll(strings.Split(v, ","))
}

// trimAll returns ss with the spaces around each trimmed (nil for none).
func trimAll(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// contentDigest answers GET /v1/admin/digest?scope=content: equal on datacenters that
// converged.
func (s *Server) contentDigest(c *fiber.Ctx) error {
	st, ok := s.cfg.Store.(xdcStore)
	if !ok {
		return s.error(c, fmt.Errorf("%w: no content digest here", db.ErrInvalidArgument))
	}
	h, err := st.ContentDigest()
	if err != nil {
		return s.error(c, err)
	}
	return c.JSON(fiber.Map{"scope": "content", "digest": hex.EncodeToString(h[:])})
}
