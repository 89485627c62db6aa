// Package query compiles and runs document queries: CEL filters over a collection, with
// sorting, keyset pagination, projection, counting and a planner that serves conjuncts from
// secondary indexes.
//
// It is pure: it reaches documents and index entries only through the Source interface,
// which the db package implements over the tiers. It never writes.
//
// Filters are CEL expressions over the variables doc (the JSON document: objects are maps,
// numbers are doubles), id (string), version (int) and ts (timestamp). CEL's standard
// library plus the strings and math extensions are available. A Compiler type-checks and
// cost-checks each expression once and caches the program by its text (bounded); programs
// are safe for concurrent use.
//
// The one rule for evaluation errors: a document on which the filter errors (a missing
// field, a type mismatch such as "abc" > 3) does not match. The query does not fail; the
// number of such documents is reported in the plan. A filter that exceeds the runtime cost
// limit on any document fails the whole query with ErrTooExpensive.
//
// Ordering: results are ordered by the sort fields, then by id. Values of different JSON
// types order as: missing < null < booleans < numbers < strings < lists < objects (lists
// and objects by their JSON text). Index keys use the same order (EncodeValue), so an index
// scan and a full scan agree.
//
// Planning: the filter's top-level conjuncts of the form FIELD == c, FIELD in [c, ...],
// FIELD < c (<=, >, >=) with FIELD a path under doc (doc.a.b or doc["a"]) or id, and c a
// null, bool, number or string literal, are candidates. The planner picks the ready index
// whose leading fields are covered by the most equality conjuncts (then a range on the next
// field), or the id order for conjuncts on id, or a full scan. Whatever it picks, every
// candidate document is checked against the whole filter, so an index can only narrow the
// scan, never change the answer.
package query
