package ws

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/query"
)

// clientMsg is any message a WebSocket client sends.
type clientMsg struct {
	Type        string     `json:"type"`
	ID          string     `json:"id"`
	Collections []string   `json:"collections"`
	Filter      string     `json:"filter"`
	Include     []string   `json:"include"`
	From        string     `json:"from"`
	Time        string     `json:"time"`
	Token       string     `json:"token"`
	Query       *liveQuery `json:"query"`
}

type liveQuery struct {
	Collection string `json:"collection"`
	Filter     string `json:"filter"`
	Sort       []struct {
		Field string `json:"field"`
		Desc  bool   `json:"desc"`
	} `json:"sort"`
	Limit  int      `json:"limit"`
	Fields []string `json:"fields"`
}

// validSubID reports whether id is 1–64 printable ASCII characters without spaces.
func validSubID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// subscribeRequest builds the database request of a change subscription from its options.
// include nil means ["after"].
func subscribeRequest(collections []string, filter string, include []string, from, at, token string) (db.SubscribeRequest, error) {
	r := db.SubscribeRequest{Collections: collections, Filter: filter, From: from, Token: token}
	if include == nil {
		include = []string{"after"}
	}
	for _, in := range include {
		switch in {
		case "before":
			r.IncludeBefore = true
		case "after":
			r.IncludeAfter = true
		default:
			return r, fmt.Errorf("%w: include takes before and after, got %q", db.ErrInvalidArgument, in)
		}
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return r, fmt.Errorf("%w: time must be RFC 3339: %v", db.ErrInvalidArgument, err)
		}
		r.Time = t
	}
	if from == "" && token != "" {
		r.From = "token"
	}
	return r, nil
}

func (q *liveQuery) request() db.QueryRequest {
	r := db.QueryRequest{Collection: q.Collection, Filter: q.Filter, Limit: q.Limit, Fields: q.Fields, Consistency: db.Local}
	for _, s := range q.Sort {
		r.Sort = append(r.Sort, query.SortField{Field: s.Field, Desc: s.Desc})
	}
	return r
}

// Server messages.

type errorBody struct {
	Code     string        `json:"code"`
	Message  string        `json:"message"`
	Earliest *log.Position `json:"earliest,omitempty"`
	Line     int           `json:"line,omitempty"`
	Column   int           `json:"column,omitempty"`
}

func toErrorBody(info gateway.ErrorInfo) *errorBody {
	return &errorBody{Code: info.Code, Message: info.Message, Earliest: info.Earliest, Line: info.Line, Column: info.Column}
}

type errorMsg struct {
	Type  string     `json:"type"` // "error"
	Sub   string     `json:"sub,omitempty"`
	Error *errorBody `json:"error"`
}

type eventMsg struct {
	Type  string         `json:"type"` // "event"
	Sub   string         `json:"sub"`
	Event *feed.Envelope `json:"event"`
}

type lagBody struct {
	Events  uint64  `json:"events"`
	Seconds float64 `json:"seconds"`
}

type tokenMsg struct {
	Type  string   `json:"type"` // "checkpoint", "caught_up"
	Sub   string   `json:"sub,omitempty"`
	Token string   `json:"token"`
	Lag   *lagBody `json:"lag,omitempty"`
}

type unsubscribedMsg struct {
	Type string `json:"type"` // "unsubscribed"
	Sub  string `json:"sub"`
}

type closingMsg struct {
	Type   string            `json:"type"` // "closing"
	Reason string            `json:"reason"`
	Tokens map[string]string `json:"tokens"`
}

// docBody is a document as queries return it.
type docBody struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Version    uint64          `json:"version"`
	TS         string          `json:"ts"`
	Doc        json.RawMessage `json:"doc,omitempty"`
}

func docBodyOf(d db.Doc) docBody {
	return docBody{Collection: d.Collection, ID: d.ID, Version: d.Version, TS: d.TS.String(), Doc: d.Body}
}

type resultMsg struct {
	Type  string    `json:"type"` // "result"
	Sub   string    `json:"sub"`
	Docs  []docBody `json:"docs"`
	Token string    `json:"token"`
}

type deltaMsg struct {
	Type  string  `json:"type"` // "delta"
	Sub   string  `json:"sub"`
	Op    string  `json:"op"`
	Index *int    `json:"index,omitempty"` // add, change
	Doc   docBody `json:"doc"`
	Last  bool    `json:"last,omitempty"`
	Token string  `json:"token"`
}

func lagOf(l feed.Lag) *lagBody { return &lagBody{Events: l.Events, Seconds: l.Seconds.Seconds()} }

func kindName(k feed.Kind) string {
	switch k {
	case feed.KindEvent:
		return "event"
	case feed.KindCheckpoint:
		return "checkpoint"
	case feed.KindCaughtUp:
		return "caught_up"
	}
	return "unknown"
}

// splitList splits a comma-separated query parameter, dropping empty items; "" gives nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
