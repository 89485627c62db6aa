// Package archive is the L4 tier: immutable, zstd-compressed segment files of old events.
//
// A segment holds the consecutive events [From, To] of one shard, exactly as the event
// store held them (encoded log.Event records). Its file is: the magic "AERSEG1\n", a header
// (shard, from, to), the zstd-compressed payload (each record as a uvarint length and the
// bytes), and a footer with the payload's length and SHA-256. A segment is written to a
// temporary name, fsynced, renamed into place and the directory fsynced: once Put returns,
// it is durable, and only then may the caller delete the events from L2.
//
// Blobs stores the files. Dir is the local-directory implementation; an object store
// implements the same three methods. Archive adds the segment format, a range index built
// from the file names, a bounded cache of decoded segments, and statistics.
//
// Archive is safe for concurrent use.
package archive
