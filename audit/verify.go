package audit

import (
	"crypto/ed25519"
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
)

// Item is one stored event handed to Verify: decoded, or the error that kept it from
// decoding (a corrupt record is itself a broken link).
type Item struct {
	Index uint64
	Event *log.Event
	Err   error
}

// Break is the first broken link found.
type Break struct {
	Position log.Position `json:"position"`
	Reason   string       `json:"reason"`
	Expected string       `json:"expected,omitempty"`
	Found    string       `json:"found,omitempty"`
}

// Report is the outcome of a verification.
type Report struct {
	OK          bool   `json:"ok"`
	Shard       uint64 `json:"shard"`
	From        uint64 `json:"from"`
	To          uint64 `json:"to"`
	Events      uint64 `json:"events"`
	Head        string `json:"head,omitempty"` // hash of the last event checked
	Checkpoints int    `json:"checkpoints"`    // signed checkpoints checked
	Break       *Break `json:"break,omitempty"`
}

// Range is what Verify checks.
type Range struct {
	Shard uint64
	// Anchor is the hash of the event before the first item (nil when the first item is
	// the shard's first event, whose previous hash must be zero).
	Anchor *log.Hash
	// Head, when known, is the hash the last item must have (the shard's recorded head).
	Head        *log.Hash
	Checkpoints []Checkpoint
	Keys        map[string]ed25519.PublicKey
}

// Verify checks items (consecutive events of one shard, in index order): each decodes,
// indexes have no gap, each event's previous hash is the hash of the event before it, the
// last one matches Head, and every checkpoint in the range is signed by a known key and
// names the hash the chain has there. It reports the first problem with the position of
// the event that is wrong: when a link between two events fails, the next link (or the
// head) tells which of the two was altered.
func Verify(items []Item, r Range) Report {
	rep := Report{Shard: r.Shard}
	if len(items) == 0 {
		rep.OK = true
		return rep
	}
	rep.From, rep.To = items[0].Index, items[len(items)-1].Index
	pos := func(i uint64) log.Position { return log.Position{Shard: r.Shard, Index: i} }
	fail := func(b Break) Report { rep.Break = &b; return rep }

	hashes := make([]log.Hash, len(items))
	for i, it := range items {
		if it.Err != nil || it.Event == nil {
			return fail(Break{Position: pos(it.Index), Reason: fmt.Sprintf("event does not decode: %v", it.Err)})
		}
		if i > 0 && it.Index != items[i-1].Index+1 {
			return fail(Break{Position: pos(items[i-1].Index + 1), Reason: "event missing"})
		}
		if it.Event.Position != pos(it.Index) {
			return fail(Break{Position: pos(it.Index), Reason: fmt.Sprintf("event claims position %s", it.Event.Position)})
		}
		hashes[i] = it.Event.Hash()
	}
	// prevOK(i): is event i's recorded previous hash right?
	prevWant := func(i int) log.Hash {
		if i > 0 {
			return hashes[i-1]
		}
		if r.Anchor != nil {
			return *r.Anchor
		}
		return log.Hash{}
	}
	// confirmed(i): does something after event i vouch for its hash?
	confirmed := func(i int) bool {
		if i+1 < len(items) {
			return items[i+1].Event.PrevHash == hashes[i]
		}
		return r.Head != nil && *r.Head == hashes[i]
	}
	for i, it := range items {
		if want := prevWant(i); it.Event.PrevHash != want {
			// Either event i-1 was altered (its hash changed) or event i was (its recorded
			// previous hash changed). If the chain after i still vouches for event i, the
			// fault is event i-1.
			if i > 0 && confirmed(i) {
				return fail(Break{Position: pos(items[i-1].Index), Reason: "event altered: its hash no longer matches what the next event recorded",
					Expected: HashHex(it.Event.PrevHash), Found: HashHex(hashes[i-1])})
			}
			return fail(Break{Position: pos(it.Index), Reason: "event altered: its previous hash does not match the chain",
				Expected: HashHex(want), Found: HashHex(it.Event.PrevHash)})
		}
	}
	last := len(items) - 1
	if r.Head != nil && *r.Head != hashes[last] {
		return fail(Break{Position: pos(items[last].Index), Reason: "event altered: its hash does not match the shard's recorded head",
			Expected: HashHex(*r.Head), Found: HashHex(hashes[last])})
	}
	for _, cp := range r.Checkpoints {
		if cp.Shard != r.Shard || cp.Index < rep.From || cp.Index > rep.To {
			continue
		}
		if err := VerifySignature(&cp, r.Keys); err != nil {
			return fail(Break{Position: pos(cp.Index), Reason: "checkpoint signature: " + err.Error()})
		}
		if got := HashHex(hashes[cp.Index-rep.From]); got != cp.Head {
			return fail(Break{Position: pos(cp.Index), Reason: fmt.Sprintf("event differs from the one node %d signed", cp.Node),
				Expected: cp.Head, Found: got})
		}
		rep.Checkpoints++
	}
	rep.OK, rep.Events, rep.Head = true, uint64(len(items)), HashHex(hashes[last])
	return rep
}
