package rest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/query"
	"github.com/gofiber/fiber/v2"
)

type queryRequest struct {
	Filter string `json:"filter"`
	Sort   []struct {
		Field string `json:"field"`
		Desc  bool   `json:"desc"`
	} `json:"sort"`
	Limit       int      `json:"limit"`
	Cursor      string   `json:"cursor"`
	Fields      []string `json:"fields"`
	Count       bool     `json:"count"`
	Explain     bool     `json:"explain"`
	Consistency string   `json:"consistency"`
	AsOf        string   `json:"as_of"`
}

// decodeStrict decodes a JSON body into v, refusing unknown fields.
func (s *Server) decodeStrict(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if err := s.checkJSON(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", db.ErrInvalidArgument, err)
	}
	return nil
}

func (s *Server) query(c *fiber.Ctx) error {
	var req queryRequest
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	cons, err := db.ParseConsistency(req.Consistency)
	if err != nil {
		return s.error(c, err)
	}
	asOf, err := db.ParseAsOf(req.AsOf)
	if err != nil {
		return s.error(c, err)
	}
	r := db.QueryRequest{
		AsOf: asOf, Collection: c.Params("c"), Filter: req.Filter, Limit: req.Limit, Cursor: req.Cursor,
		Fields: req.Fields, Count: req.Count, Explain: req.Explain, Consistency: cons,
	}
	for _, sf := range req.Sort {
		r.Sort = append(r.Sort, query.SortField{Field: sf.Field, Desc: sf.Desc})
	}
	res, err := s.cfg.Store.Query(c.UserContext(), r)
	if err != nil {
		return s.error(c, err)
	}
	out := fiber.Map{}
	if req.Count {
		out["count"] = res.Count
	} else {
		docs := make([]docResponse, len(res.Docs))
		for i, d := range res.Docs {
			docs[i] = docResponse{Collection: d.Collection, ID: d.ID, Version: d.Version, TS: d.TS.String(), Doc: d.Body}
		}
		out["docs"] = docs
		out["next_cursor"] = res.NextCursor
	}
	if req.Explain {
		out["plan"] = fiber.Map{"shards": res.Plan}
	}
	return c.JSON(out)
}

type indexResponse struct {
	Collection string   `json:"collection"`
	Name       string   `json:"name"`
	Fields     []string `json:"fields"`
	State      string   `json:"state"`
	Entries    int64    `json:"entries"`
}

func (s *Server) indexes(c *fiber.Ctx) error {
	cons, err := consistency(c)
	if err != nil {
		return s.error(c, err)
	}
	ixs, err := s.cfg.Store.Indexes(c.UserContext(), c.Params("c"), cons)
	if err != nil {
		return s.error(c, err)
	}
	out := make([]indexResponse, len(ixs))
	for i, ix := range ixs {
		out[i] = indexResponse{Collection: ix.Collection, Name: ix.Name, Fields: ix.Fields, State: ix.State, Entries: ix.Entries}
	}
	return c.JSON(fiber.Map{"indexes": out})
}

func (s *Server) createIndex(c *fiber.Ctx) error {
	var req struct {
		Fields []string `json:"fields"`
	}
	if err := s.decodeStrict(c.Body(), &req); err != nil {
		return s.error(c, err)
	}
	created, err := s.cfg.Store.CreateIndex(c.UserContext(), c.Params("c"), c.Params("name"), req.Fields)
	if err != nil {
		return s.error(c, err)
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(fiber.Map{"collection": c.Params("c"), "name": c.Params("name"), "fields": req.Fields})
}

func (s *Server) dropIndex(c *fiber.Ctx) error {
	if err := s.cfg.Store.DropIndex(c.UserContext(), c.Params("c"), c.Params("name")); err != nil {
		return s.error(c, err)
	}
	return c.JSON(fiber.Map{"collection": c.Params("c"), "name": c.Params("name"), "dropped": true})
}
