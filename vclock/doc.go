// Package vclock is the vector clock every document carries across datacenters: for each
// datacenter, how many of the document's writes accepted there this version has seen.
//
// A write accepted in datacenter dc ticks dc's counter of the document's clock, so the
// pair (dc, clock[dc]) names that write uniquely. Comparing two clocks says whether one
// version has seen the other (Before, After), they are the same (Equal), or neither has
// seen the other (Concurrent): a conflict the document's policy resolves.
//
// A Clock is a plain map and is treated as immutable: Merge and Tick return new maps. Its
// JSON form is the map; its binary form (Append, Decode) lists the entries sorted by
// datacenter, so equal clocks encode to equal bytes. The package is pure and safe for
// concurrent use on clocks nobody mutates.
package vclock
