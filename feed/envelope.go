package feed

import (
	"encoding/json"
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Source names where an event comes from.
type Source struct {
	Cluster string `json:"cluster"`
	DC      string `json:"dc"`
	Shard   uint64 `json:"shard"`
}

// Envelope is one change as subscribers receive it. It follows the change-data-capture
// conventions people already parse: a unique event id to dedupe on, a source, a CloudEvents
// style type and time, a Debezium-style op (c create, u update, d delete) with before and
// after images, plus the event's position and the token to resume after it.
//
// Origin is the datacenter that accepted the write: Source.DC for a local write, another
// datacenter for a replicated one. Clock is the document's vector clock after the event.
// After is always the whole document after the event (for a patch too), never the patch.
type Envelope struct {
	EventID    string          `json:"event_id"`
	Source     Source          `json:"source"`
	Origin     string          `json:"origin"`
	Clock      vclock.Clock    `json:"clock,omitempty"`
	Type       string          `json:"type"`
	Time       string          `json:"time"`
	Op         string          `json:"op"`
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Version    uint64          `json:"version"`
	Principal  string          `json:"principal"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Position   log.Position    `json:"position"`
	Token      string          `json:"token"`
}

// EventID returns the id of the event at p in datacenter dc: unique per event, stable
// across replicas and redeliveries. dc is the datacenter whose log holds the event (a
// replicated event gets an id of the receiving datacenter; its Origin names the writer).
func EventID(dc string, p log.Position) string { return fmt.Sprintf("%s-%d-%d", dc, p.Shard, p.Index) }

// Ops and types.
const (
	OpCreate = "c"
	OpUpdate = "u"
	OpDelete = "d"
	OpRedact = "r" // the bodies of the document's past versions were erased
)

func eventType(op string) string {
	switch op {
	case OpCreate:
		return "aerolith.document.created"
	case OpDelete:
		return "aerolith.document.deleted"
	}
	return "aerolith.document.updated"
}
