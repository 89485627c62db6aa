package rest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/gofiber/fiber/v2"
)

// eventsRequest reads GET /v1/events query parameters.
func eventsRequest(c *fiber.Ctx) (db.EventsRequest, error) {
	r := db.EventsRequest{Collection: c.Query("collection"), ID: c.Query("id"), Filter: c.Query("filter"), Cursor: c.Query("cursor")}
	var err error
	parseTime := func(name string) time.Time {
		v := c.Query(name)
		if v == "" || err != nil {
			return time.Time{}
		}
		t, perr := time.Parse(time.RFC3339Nano, v)
		if perr != nil {
			err = fmt.Errorf("%w: %s must be an RFC 3339 time", db.ErrInvalidArgument, name)
		}
		return t
	}
	parseUint := func(name string) uint64 {
		v := c.Query(name)
		if v == "" || err != nil {
			return 0
		}
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			err = fmt.Errorf("%w: %s must be a non-negative integer", db.ErrInvalidArgument, name)
		}
		return n
	}
	r.FromTime, r.ToTime = parseTime("from_time"), parseTime("to_time")
	r.Shard, r.FromIndex, r.ToIndex = parseUint("shard"), parseUint("from_index"), parseUint("to_index")
	r.Limit = int(parseUint("limit"))
	return r, err
}

// events pages through the event log; with Accept: application/x-ndjson it streams every
// matching event, one JSON object per line, to the end of the log.
func (s *Server) events(c *fiber.Ctx) error {
	r, err := eventsRequest(c)
	if err != nil {
		return s.error(c, err)
	}
	if !strings.Contains(c.Get(fiber.HeaderAccept), "application/x-ndjson") {
		page, err := s.cfg.Store.Events(c.UserContext(), r)
		if err != nil {
			return s.error(c, err)
		}
		events := page.Events
		if events == nil {
			events = []db.EventRecord{}
		}
		return c.JSON(fiber.Map{"events": events, "next_cursor": page.NextCursor})
	}
	// Validate with a first page before committing to a 200 stream.
	r.Limit = 1000
	first, err := s.cfg.Store.Events(c.UserContext(), r)
	if err != nil {
		return s.error(c, err)
	}
	ctx := c.UserContext()
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		enc := json.NewEncoder(w)
		page := first
		for {
			for _, e := range page.Events {
				if enc.Encode(e) != nil {
					return
				}
			}
			if w.Flush() != nil || page.NextCursor == "" {
				return
			}
			r.Cursor = page.NextCursor
			next, err := s.cfg.Store.Events(ctx, r)
			if err != nil {
				// The handler has returned: c is no longer ours to use here.
				_ = enc.Encode(fiber.Map{"error": toErrorBody(gateway.Lookup(err))})
				_ = w.Flush()
				return
			}
			page = next
		}
	})
	return nil
}
