package rest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/aerolithsdb/aerolith/audit"
	"github.com/aerolithsdb/aerolith/db"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) auditKeys(c *fiber.Ctx) error {
	var out []fiber.Map
	for _, k := range s.cfg.Store.Keys() {
		out = append(out, fiber.Map{"node": k.Node, "key_id": k.KeyID, "algorithm": "ed25519", "public_key": hex.EncodeToString(k.Public)})
	}
	return c.JSON(fiber.Map{"keys": out})
}

// auditVerify checks one shard (?shard=) or every shard over [from, to].
func (s *Server) auditVerify(c *fiber.Ctx) error {
	var bounds [3]uint64
	for i, name := range []string{"shard", "from", "to"} {
		if v := c.Query(name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return s.error(c, fmt.Errorf("%w: %s must be a non-negative integer", db.ErrInvalidArgument, name))
			}
			bounds[i] = n
		}
	}
	shards := []uint64{bounds[0]}
	if bounds[0] == 0 {
		shards = nil
		for i := 1; i <= s.cfg.Store.Shards(); i++ {
			shards = append(shards, uint64(i))
		}
	}
	ok := true
	reports := make([]audit.Report, 0, len(shards))
	for _, sh := range shards {
		rep, err := s.cfg.Store.Verify(c.UserContext(), sh, bounds[1], bounds[2])
		if err != nil {
			return s.error(c, err)
		}
		ok = ok && rep.OK
		reports = append(reports, rep)
	}
	return c.JSON(fiber.Map{"ok": ok, "shards": reports})
}

// auditExport streams every event, checkpoint and public key as NDJSON.
func (s *Server) auditExport(c *fiber.Ctx) error {
	ctx := c.UserContext()
	store := s.cfg.Store
	log := s.log
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := store.Export(ctx, w); err != nil {
			log.Error("audit export failed", "err", err)
		}
		_ = w.Flush()
	})
	return nil
}

// digest answers the live store's state digest and the position it reflects; with
// scope=content, the cross-datacenter content digest instead.
func (s *Server) digest(c *fiber.Ctx) error {
	if c.Query("scope") == "content" {
		return s.contentDigest(c)
	}
	d, err := s.cfg.Store.StateDigest()
	if err != nil {
		return s.error(c, err)
	}
	return c.JSON(d)
}

// redact erases the bodies of a document's past versions: {"reason": "…"}.
func (s *Server) redact(c *fiber.Ctx) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	p, err := s.principal(c)
	if err != nil {
		return s.error(c, err)
	}
	r, err := s.cfg.Store.Redact(c.UserContext(), p, c.Params("c"), c.Params("id"), req.Reason)
	if err != nil {
		return s.error(c, err)
	}
	return c.JSON(toWriteResponse(r))
}
