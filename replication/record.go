package replication

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordVersion is source.version of the records this package writes.
const recordVersion = "aerolith-1"

// Header names. The ce_ ones follow the CloudEvents Kafka binding; the aerolith_ ones
// repeat what the applier reads from the value, for tools that route on headers.
const (
	hdrID          = "ce_id"
	hdrSource      = "ce_source"
	hdrType        = "ce_type"
	hdrTime        = "ce_time"
	hdrSpecVersion = "ce_specversion"
	hdrContentType = "content-type"
	hdrOrigin      = "aerolith_origin"
	hdrShard       = "aerolith_shard"
	hdrIndex       = "aerolith_index"
)

// value is a record's JSON value: a Debezium-style change envelope.
type value struct {
	Before json.RawMessage `json:"before"` // the document before the event (null: none)
	After  json.RawMessage `json:"after"`  // the whole document after it (null: deleted)
	Op     string          `json:"op"`     // c, u or d
	Source source          `json:"source"`
	TSMs   int64           `json:"ts_ms"` // when the record was produced
	Clock  vclock.Clock    `json:"clock"` // the document's vector clock after the event
}

// source says where the event was committed.
type source struct {
	Version    string `json:"version"`
	Connector  string `json:"connector"`
	Name       string `json:"name"` // cluster name
	DC         string `json:"dc"`   // the origin datacenter
	Shard      uint64 `json:"shard"`
	Index      uint64 `json:"index"`
	Collection string `json:"collection"`
	ID         string `json:"id"`
	DocVersion uint64 `json:"doc_version"` // the document's version at the origin
	TSMs       int64  `json:"ts_ms"`       // commit time at the origin
	HLC        string `json:"hlc"`         // the event's HLC timestamp (decimal: exact beyond 2^53)
	Principal  string `json:"principal,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	// Replicate is the origin's policy: the datacenters the event is meant for (absent:
	// every one).
	Replicate []string `json:"replicate,omitempty"`
}

// encodeRecord builds the Kafka record of a local event. env must carry After (the
// subscription includes it); raw is the stored event behind it.
func encodeRecord(topic, cluster string, env *feed.Envelope, raw *log.Event, replicate []string, now time.Time) (*kgo.Record, error) {
	v := value{
		Before: env.Before, After: env.After, Op: env.Op, TSMs: now.UnixMilli(), Clock: raw.Clock,
		Source: source{
			Version: recordVersion, Connector: "aerolith", Name: cluster, DC: raw.Origin,
			Shard: raw.Position.Shard, Index: raw.Position.Index, Collection: raw.Collection, ID: raw.ID,
			DocVersion: raw.Version, TSMs: raw.TS.Time().UnixMilli(), HLC: strconv.FormatUint(uint64(raw.TS), 10),
			Principal: raw.Principal, RequestID: raw.RequestID, Replicate: replicate,
		},
	}
	if v.Clock == nil {
		v.Clock = vclock.Clock{}
	}
	if env.Op == feed.OpDelete {
		v.After = nil
	}
	body, err := json.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("replication: encode %s: %w", raw.Position, err)
	}
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(raw.Collection + "/" + raw.ID),
		Value: body,
		Headers: []kgo.RecordHeader{
			{Key: hdrID, Value: []byte(feed.EventID(raw.Origin, raw.Position))},
			{Key: hdrSource, Value: []byte("/aerolith/" + cluster + "/" + raw.Origin + "/" + raw.Collection)},
			{Key: hdrType, Value: []byte(env.Type)},
			{Key: hdrTime, Value: []byte(raw.TS.Time().UTC().Format(time.RFC3339Nano))},
			{Key: hdrSpecVersion, Value: []byte("1.0")},
			{Key: hdrContentType, Value: []byte("application/json")},
			{Key: hdrOrigin, Value: []byte(raw.Origin)},
			{Key: hdrShard, Value: []byte(strconv.FormatUint(raw.Position.Shard, 10))},
			{Key: hdrIndex, Value: []byte(strconv.FormatUint(raw.Position.Index, 10))},
		},
	}, nil
}

// decoded is a record as the applier uses it.
type decoded struct {
	ev        db.RemoteEvent
	replicate []string // nil: every datacenter
}

// decodeRecord parses a record's value (the headers are for other tools; the value is
// authoritative). partition becomes the event's Stream.
func decodeRecord(raw []byte, partition int32) (decoded, error) {
	var v value
	if err := json.Unmarshal(raw, &v); err != nil {
		return decoded{}, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	s := v.Source
	if s.DC == "" || s.Shard == 0 || s.Index == 0 || s.Collection == "" || s.ID == "" {
		return decoded{}, fmt.Errorf("%w: source needs dc, shard, index, collection and id", ErrInvalidRecord)
	}
	if partition < 0 {
		return decoded{}, fmt.Errorf("%w: negative partition", ErrInvalidRecord)
	}
	hlc, err := strconv.ParseUint(s.HLC, 10, 64)
	if err != nil {
		return decoded{}, fmt.Errorf("%w: source.hlc: %v", ErrInvalidRecord, err)
	}
	ev := db.RemoteEvent{
		Origin: s.DC, Shard: s.Shard, Index: s.Index, Stream: uint32(partition), TS: log.Timestamp(hlc),
		Collection: s.Collection, ID: s.ID, Clock: v.Clock, Principal: s.Principal, RequestID: s.RequestID,
	}
	after := bytes.TrimSpace(v.After)
	switch v.Op {
	case feed.OpCreate, feed.OpUpdate:
		if len(after) == 0 || after[0] != '{' {
			return decoded{}, fmt.Errorf("%w: op %q needs an object as after", ErrInvalidRecord, v.Op)
		}
		ev.Op, ev.Body = log.OpPut, after
	case feed.OpDelete:
		ev.Op = log.OpDelete
	default:
		return decoded{}, fmt.Errorf("%w: op %q", ErrInvalidRecord, v.Op)
	}
	return decoded{ev: ev, replicate: s.Replicate}, nil
}

// sendsTo reports whether an event whose origin policy lists replicate goes to dc.
func sendsTo(replicate []string, dc string) bool {
	if replicate == nil {
		return true
	}
	for _, r := range replicate {
		if r == dc {
			return true
		}
	}
	return false
}
