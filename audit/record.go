package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/aerolithsdb/aerolith/log"
	"github.com/aerolithsdb/aerolith/vclock"
)

// Record is one stored event as the audit view shows it: every field the hash chain
// covers, the body, and the hashes.
type Record struct {
	Position    log.Position    `json:"position"`
	TS          string          `json:"ts"`
	HLC         uint64          `json:"hlc"`
	Origin      string          `json:"origin"`
	Op          string          `json:"op"`
	Collection  string          `json:"collection"`
	ID          string          `json:"id"`
	Version     uint64          `json:"version"`
	PrevVersion uint64          `json:"prev_version"`
	Principal   string          `json:"principal"`
	RequestID   string          `json:"request_id,omitempty"`
	Body        json.RawMessage `json:"body,omitempty"`
	// BodyBase64 carries the exact body bytes: always in exports (JSON re-encoding may
	// change bytes), and whenever the body is not JSON.
	BodyBase64 string `json:"body_base64,omitempty"`
	// Redacted: the body was erased; BodySHA256 is what the chain covers.
	Redacted   bool   `json:"redacted,omitempty"`
	BodySHA256 string `json:"body_sha256,omitempty"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
	// Clock is the document's vector clock after the event (absent on events written
	// before clocks); the chain covers it.
	Clock vclock.Clock `json:"clock,omitempty"`
}

// RecordOf renders an event.
func RecordOf(e *log.Event) Record {
	r := Record{
		Position: e.Position, TS: e.TS.String(), HLC: uint64(e.TS), Origin: e.Origin, Op: e.Op.String(),
		Collection: e.Collection, ID: e.ID, Version: e.Version, PrevVersion: e.PrevVersion,
		Principal: e.Principal, RequestID: e.RequestID, PrevHash: HashHex(e.PrevHash), Hash: HashHex(e.Hash()),
		Clock: e.Clock,
	}
	switch {
	case e.Redacted:
		r.Redacted, r.BodySHA256 = true, HashHex(e.BodyHash())
	case len(e.Body) > 0 && json.Valid(e.Body):
		r.Body = e.Body
	case len(e.Body) > 0:
		r.BodyBase64 = base64.StdEncoding.EncodeToString(e.Body)
	}
	return r
}

// Event rebuilds the event a record shows.
func (r *Record) Event() (*log.Event, error) {
	op, ok := log.ParseOp(r.Op)
	if !ok {
		return nil, fmt.Errorf("unknown op %q", r.Op)
	}
	e := &log.Event{
		Position: r.Position, TS: log.Timestamp(r.HLC), Origin: r.Origin, Op: op,
		Collection: r.Collection, ID: r.ID, Version: r.Version, PrevVersion: r.PrevVersion,
		Principal: r.Principal, RequestID: r.RequestID, Body: r.Body, Clock: r.Clock.Clone(),
	}
	if r.Redacted {
		h, err := hex.DecodeString(r.BodySHA256)
		if err != nil || len(h) != len(log.Hash{}) {
			return nil, fmt.Errorf("body_sha256 is not a SHA-256")
		}
		e.Body, e.Redacted = h, true
	} else if r.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(r.BodyBase64)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		e.Body = b
	}
	ph, err := hex.DecodeString(r.PrevHash)
	if err != nil || len(ph) != len(e.PrevHash) {
		return nil, fmt.Errorf("prev_hash is not a SHA-256")
	}
	copy(e.PrevHash[:], ph)
	return e, nil
}

// Export lines: {"type":"key",...}, {"type":"event","event":{...}}, {"type":"checkpoint","checkpoint":{...}}.
type exportLine struct {
	Type       string      `json:"type"`
	KeyID      string      `json:"key_id,omitempty"`
	PublicKey  string      `json:"public_key,omitempty"`
	Node       uint64      `json:"node,omitempty"`
	Event      *Record     `json:"event,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// Writer writes an export as NDJSON.
type Writer struct{ enc *json.Encoder }

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &Writer{enc: enc}
}

// Key writes a public key line.
func (w *Writer) Key(node uint64, id string, pub ed25519.PublicKey) error {
	return w.enc.Encode(exportLine{Type: "key", KeyID: id, PublicKey: hex.EncodeToString(pub), Node: node})
}

// Event writes an event line with its exact body bytes.
func (w *Writer) Event(e *log.Event) error {
	r := RecordOf(e)
	if len(e.Body) > 0 && !e.Redacted {
		r.BodyBase64 = base64.StdEncoding.EncodeToString(e.Body)
	}
	return w.enc.Encode(exportLine{Type: "event", Event: &r})
}

// Checkpoint writes a checkpoint line.
func (w *Writer) Checkpoint(c Checkpoint) error {
	return w.enc.Encode(exportLine{Type: "checkpoint", Checkpoint: &c})
}

// VerifyExport reads an export and verifies every shard in it with no server: each shard's
// events must form an unbroken chain from its first event, and every checkpoint must be
// signed by a key in the file (or in trusted, when given) and match the chain.
func VerifyExport(r io.Reader, trusted map[string]ed25519.PublicKey) ([]Report, error) {
	keys := map[string]ed25519.PublicKey{}
	events := map[uint64][]Item{}
	var cps []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("audit: line %d: %w", line, err)
		}
		switch l.Type {
		case "key":
			pub, err := hex.DecodeString(l.PublicKey)
			if err != nil || len(pub) != ed25519.PublicKeySize || KeyID(pub) != l.KeyID {
				return nil, fmt.Errorf("audit: line %d: bad key", line)
			}
			keys[l.KeyID] = pub
		case "event":
			if l.Event == nil {
				return nil, fmt.Errorf("audit: line %d: event line without event", line)
			}
			e, err := l.Event.Event()
			s := l.Event.Position.Shard
			events[s] = append(events[s], Item{Index: l.Event.Position.Index, Event: e, Err: err})
		case "checkpoint":
			if l.Checkpoint != nil {
				cps = append(cps, *l.Checkpoint)
			}
		default:
			return nil, fmt.Errorf("audit: line %d: unknown type %q", line, l.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if trusted != nil {
		keys = trusted
	}
	shards := make([]uint64, 0, len(events))
	for s := range events {
		shards = append(shards, s)
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i] < shards[j] })
	var out []Report
	for _, s := range shards {
		items := events[s]
		sort.Slice(items, func(i, j int) bool { return items[i].Index < items[j].Index })
		rep := Verify(items, Range{Shard: s, Checkpoints: cps, Keys: keys})
		if rep.OK && items[0].Index != 1 {
			rep.OK = false
			rep.Break = &Break{Position: log.Position{Shard: s, Index: 1}, Reason: "the export does not start at the shard's first event"}
		}
		out = append(out, rep)
	}
	return out, nil
}

// ReadEvents reads the events of an export, per shard in index order.
func ReadEvents(r io.Reader) (map[uint64][]log.Event, error) {
	out := map[uint64][]log.Event{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("audit: line %d: %w", line, err)
		}
		if l.Type != "event" || l.Event == nil {
			continue
		}
		e, err := l.Event.Event()
		if err != nil {
			return nil, fmt.Errorf("audit: line %d: %w", line, err)
		}
		out[e.Position.Shard] = append(out[e.Position.Shard], *e)
	}
	for _, evs := range out {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Position.Index < evs[j].Position.Index })
	}
	return out, sc.Err()
}
