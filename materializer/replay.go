package materializer

import (
	"fmt"

	"github.com/aerolithsdb/aerolith/log"
)

// CommandOf returns the command that, applied to the state before e, appends e again:
// same operation, body, time, origin, principal and request id. Its idempotency record
// expires at once, so a request id seen twice in a history is applied twice, as it was.
func CommandOf(e *log.Event) Command {
	return Command{
		TS: e.TS, Origin: e.Origin, Principal: e.Principal, IdemTTL: 0,
		Writes: []Write{{Op: e.Op, Collection: e.Collection, ID: e.ID, Body: e.Body, RequestID: e.RequestID}},
	}
}

// Replay applies events (one shard's, consecutive from its first) to the shard's state
// machine, which must be empty, and checks that each re-appended event is the event
// given: same position, version and hash.
func (s *Shard) Replay(events []log.Event) error {
	for i := range events {
		e := &events[i]
		cmd := CommandOf(e)
		entry := []log.Entry{{Index: s.applied + 1, Cmds: [][]byte{EncodeCommand(&cmd)}}}
		if err := s.Apply(entry); err != nil {
			return err
		}
		rs, err := DecodeResults(entry[0].Results[0])
		if err != nil {
			return err
		}
		if !rs[0].Status.Applied() || rs[0].Position != e.Position || rs[0].Version != e.Version {
			return fmt.Errorf("materializer: replay of %s gave %+v", e.Position, rs[0])
		}
		if s.meta.Head != e.Hash() {
			return fmt.Errorf("materializer: replay of %s produced another event (hash differs)", e.Position)
		}
	}
	return nil
}
