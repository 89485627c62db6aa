package materializer

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/aerolithsdb/aerolith/query"
	"github.com/aerolithsdb/aerolith/tiers"
	l2 "github.com/aerolithsdb/aerolith/tiers/pebble"
)

// loadIndexes reads the shard's index definitions into memory.
func (s *Shard) loadIndexes() error {
	defs, err := s.m.cfg.Store.IndexDefs(s.shard)
	if err != nil {
		return err
	}
	s.indexes = map[string][]l2.IndexDef{}
	for _, d := range defs {
		s.indexes[d.Collection] = append(s.indexes[d.Collection], d)
	}
	return nil
}

func (s *Shard) findIndex(coll, name string) (int, bool) {
	for i, d := range s.indexes[coll] {
		if d.Name == name {
			return i, true
		}
	}
	return 0, false
}

// applyIndexOp applies one index operation. Its effects on the in-memory definitions are
// immediate, so later commands of the same batch see them.
func (s *Shard) applyIndexOp(b *l2.Batch, op *IndexOp) (WriteResult, error) {
	i, exists := s.findIndex(op.Collection, op.Name)
	switch op.Kind {
	case IndexCreate:
		if exists {
			if slices.Equal(s.indexes[op.Collection][i].Fields, op.Fields) {
				return WriteResult{Status: StatusOK}, nil
			}
			return WriteResult{Status: StatusConflict}, nil
		}
		def := l2.IndexDef{Collection: op.Collection, Name: op.Name, Fields: op.Fields, State: l2.IndexBuilding}
		if err := b.PutIndexDef(s.shard, def); err != nil {
			return WriteResult{}, err
		}
		s.indexes[op.Collection] = append(s.indexes[op.Collection], def)
		return WriteResult{Status: StatusCreated}, nil
	case IndexDrop:
		if !exists {
			return WriteResult{Status: StatusNotFound}, nil
		}
		if err := b.DeleteIndex(s.shard, op.Collection, op.Name); err != nil {
			return WriteResult{}, err
		}
		s.indexes[op.Collection] = slices.Delete(s.indexes[op.Collection], i, i+1)
		return WriteResult{Status: StatusOK}, nil
	case IndexBackfill:
		if !exists {
			return WriteResult{Status: StatusNotFound}, nil
		}
		def := &s.indexes[op.Collection][i]
		if def.State != l2.IndexBuilding || def.Backfilled != op.After || op.Limit == 0 {
			return WriteResult{Status: StatusStale}, nil
		}
		fields := paths(def.Fields)
		n := uint64(0)
		var last string
		var scanErr error
		err := b.ScanDocs(s.shard, op.Collection, op.After, func(id string, d tiers.Doc) bool {
			if n == op.Limit {
				return false
			}
			n++
			last = id
			if d.Deleted {
				return true
			}
			body, err := decodeBody(d.Body)
			if err != nil {
				scanErr = err
				return false
			}
			scanErr = b.PutIndexEntry(s.shard, op.Collection, op.Name, query.DocKey(body, fields), id)
			return scanErr == nil
		})
		if err == nil {
			err = scanErr
		}
		if err != nil {
			return WriteResult{}, err
		}
		if n < op.Limit {
			def.State = l2.IndexReady
		} else {
			def.Backfilled = last
		}
		if err := b.PutIndexDef(s.shard, *def); err != nil {
			return WriteResult{}, err
		}
		return WriteResult{Status: StatusOK}, nil
	}
	return WriteResult{Status: StatusInvalid}, nil
}

// maintainIndexes moves a document's entries in every index of its collection from the
// previous version's values to the next version's.
func (s *Shard) maintainIndexes(b *l2.Batch, p *plan) error {
	defs := s.indexes[p.key.Collection]
	if len(defs) == 0 {
		return nil
	}
	var prev, next map[string]any
	var err error
	if p.live {
		if prev, err = decodeBody(p.prev.Body); err != nil {
			return err
		}
	}
	if !p.next.Deleted {
		if next, err = decodeBody(p.next.Body); err != nil {
			return err
		}
	}
	for _, d := range defs {
		fields := paths(d.Fields)
		var oldKey, newKey []byte
		if prev != nil {
			oldKey = query.DocKey(prev, fields)
		}
		if next != nil {
			newKey = query.DocKey(next, fields)
		}
		if oldKey != nil && bytes.Equal(oldKey, newKey) {
			continue
		}
		if oldKey != nil {
			if err := b.DeleteIndexEntry(s.shard, d.Collection, d.Name, oldKey, p.key.ID); err != nil {
				return err
			}
		}
		if newKey != nil {
			if err := b.PutIndexEntry(s.shard, d.Collection, d.Name, newKey, p.key.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func paths(fields []string) [][]string {
	out := make([][]string, len(fields))
	for i, f := range fields {
		out[i] = query.SplitPath(f)
	}
	return out
}

func decodeBody(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
