package ws

import (
	"slices"

	"github.com/aerolithsdb/aerolith/db"
)

// Delta ops.
const (
	OpAdd    = "add"
	OpChange = "change"
	OpRemove = "remove"
)

// Delta is one step that moves a live query's result from one run to the next.
type Delta struct {
	Op    string
	Index int    // add, change: where to insert Doc in the list as it stands when this delta is applied
	Doc   db.Doc // add, change: the new document; remove: the document as it was
}

// Diff returns the deltas that turn old into new, two documents being the same when their
// id and version are. Applied one after the other to a list equal to old — remove deletes
// the document with Doc.ID; add inserts Doc at Index; change deletes the document with
// Doc.ID, then inserts Doc at Index — they leave a list equal to new, order included.
// Removes come first, then adds and changes in the order of new.
//
// Documents in both with the same version stay where they are. They keep their relative
// order as long as the query's order is total (it is: ties break by id); one that moved
// anyway is sent as a change, so the result stays exact.
func Diff(old, new []db.Doc) []Delta {
	oldAt := make(map[string]int, len(old))
	for i, d := range old {
		oldAt[d.ID] = i
	}
	inNew := make(map[string]bool, len(new))
	for _, d := range new {
		inNew[d.ID] = true
	}
	var out []Delta
	list := make([]string, 0, max(len(old), len(new))) // the client's list, by id
	for _, d := range old {
		if inNew[d.ID] {
			list = append(list, d.ID)
		} else {
			out = append(out, Delta{Op: OpRemove, Doc: d})
		}
	}
	prev := -1 // old index of the last document left in place
	for i, d := range new {
		j, ok := oldAt[d.ID]
		op := OpAdd
		switch {
		case !ok:
		case old[j].Version != d.Version || j < prev:
			op = OpChange
			list = slices.Delete(list, slices.Index(list, d.ID), slices.Index(list, d.ID)+1)
		default:
			prev = j
			continue
		}
		// Insert right after new[i-1]: documents before it are in place, so new[:i+1] is in
		// order, and every document still to come that stays in place lies after it.
		at := 0
		if i > 0 {
			at = slices.Index(list, new[i-1].ID) + 1
		}
		list = slices.Insert(list, at, d.ID)
		out = append(out, Delta{Op: op, Index: at, Doc: d})
	}
	return out
}
