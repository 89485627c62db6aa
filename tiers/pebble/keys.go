package pebble

import "encoding/binary"

const (
	kApplied byte = 'a'
	kMeta    byte = 'm'
	kDoc     byte = 'd'
	kVersion byte = 'v'
	kEvent   byte = 'e'
	kIdem    byte = 'i'
	kExpiry  byte = 'x'
	kCount   byte = 'c'
	kRetry   byte = 't'
)

func shardPrefix(shard uint64) []byte {
	b := make([]byte, 9, 64)
	b[0] = 's'
	binary.BigEndian.PutUint64(b[1:], shard)
	return b
}

// shardBounds returns the [lower, upper) key range of a shard.
func shardBounds(shard uint64) ([]byte, []byte) {
	return shardPrefix(shard), shardPrefix(shard + 1)
}

func key(shard uint64, kind byte, parts ...[]byte) []byte {
	b := append(shardPrefix(shard), kind)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func docKey(shard uint64, coll, id string) []byte {
	return key(shard, kDoc, []byte(coll), []byte{0}, []byte(id))
}

func versionPrefix(shard uint64, coll, id string) []byte {
	return key(shard, kVersion, []byte(coll), []byte{0}, []byte(id), []byte{0})
}

func versionKey(shard uint64, coll, id string, version uint64) []byte {
	return append(versionPrefix(shard, coll, id), u64(version)...)
}

func eventKey(shard, index uint64) []byte { return key(shard, kEvent, u64(index)) }

func idemKey(shard uint64, reqID string) []byte { return key(shard, kIdem, []byte(reqID)) }

func expiryKey(shard, expiry uint64, reqID string) []byte {
	return key(shard, kExpiry, u64(expiry), []byte(reqID))
}

// retryKey sorts retry records by expiry, so that the oldest come first when they expire.
func retryKey(shard, expiry uint64, token string) []byte {
	return key(shard, kRetry, u64(expiry), []byte(token))
}

func countKey(shard uint64, coll string) []byte { return key(shard, kCount, []byte(coll)) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

const (
	kIndexDef   byte = 'I'
	kIndexEntry byte = 'n'
)

func indexDefPrefix(shard uint64) []byte { return key(shard, kIndexDef) }

func indexDefKey(shard uint64, coll, name string) []byte {
	return key(shard, kIndexDef, []byte(coll), []byte{0}, []byte(name))
}

func indexEntryPrefix(shard uint64, coll, name string) []byte {
	return key(shard, kIndexEntry, []byte(coll), []byte{0}, []byte(name), []byte{0})
}

func docPrefix(shard uint64, coll string) []byte {
	return key(shard, kDoc, []byte(coll), []byte{0})
}
