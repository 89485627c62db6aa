package log

import (
	"fmt"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/vclock"
	"github.com/klauspost/compress/zstd"
)

// The event encoding, versions 1 and 2:
//
//	version  byte (1: no vector clock; 2: with one)
//	flags    byte (bit 0: body is zstd-compressed; bit 1: body redacted, the field holds its SHA-256)
//	shard, index, ts           uvarint
//	origin                     string
//	op                         byte
//	collection, id             string
//	version, prev version      uvarint
//	principal, request id      string
//	prev hash                  32 bytes
//	clock                      version 2 only: vclock binary form (sorted entries)
//	body                       bytes (compressed when flag bit 0)
//
// An event without a clock is written as version 1, byte for byte as before clocks
// existed; both versions decode.
//
// Strings and bytes are a uvarint length then the bytes. A decoder rejects unknown
// versions and flags, trailing bytes, and bodies that decompress beyond MaxBodySize.
const (
	codecVersion   byte = 1
	codecClock     byte = 2
	flagCompressed byte = 1 << 0
	flagRedacted   byte = 1 << 1
	knownFlags          = flagCompressed | flagRedacted
)

// DefaultCompressThreshold is the body size from which bodies are zstd-compressed.
const DefaultCompressThreshold = 512

// MaxBodySize bounds a decoded body, compressed or not.
const MaxBodySize = 16 << 20

// Codec encodes and decodes events. It is safe for concurrent use.
type Codec struct {
	threshold int
	enc       *zstd.Encoder
	dec       *zstd.Decoder
}

// NewCodec returns a Codec that compresses bodies of at least threshold bytes
// (DefaultCompressThreshold when threshold <= 0).
func NewCodec(threshold int) *Codec {
	if threshold <= 0 {
		threshold = DefaultCompressThreshold
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Sprintf("log: zstd encoder: %v", err)) // only fails on bad options
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxBodySize), zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(fmt.Sprintf("log: zstd decoder: %v", err))
	}
	return &Codec{threshold: threshold, enc: enc, dec: dec}
}

// Close releases the codec's decoder goroutines.
func (c *Codec) Close() { c.dec.Close() }

// Append appends the encoding of e to b.
func (c *Codec) Append(b []byte, e *Event) []byte {
	body, flags := e.Body, byte(0)
	if e.Redacted {
		flags = flagRedacted
	} else if len(body) >= c.threshold {
		z := c.enc.EncodeAll(body, make([]byte, 0, len(body)/2))
		if len(z) < len(body) {
			body, flags = z, flagCompressed
		}
	}
	version := codecVersion
	if len(e.Clock) > 0 {
		version = codecClock
	}
	b = append(b, version, flags)
	b = wire.AppendUvarint(b, e.Position.Shard)
	b = wire.AppendUvarint(b, e.Position.Index)
	b = wire.AppendUvarint(b, uint64(e.TS))
	b = wire.AppendString(b, e.Origin)
	b = append(b, byte(e.Op))
	b = wire.AppendString(b, e.Collection)
	b = wire.AppendString(b, e.ID)
	b = wire.AppendUvarint(b, e.Version)
	b = wire.AppendUvarint(b, e.PrevVersion)
	b = wire.AppendString(b, e.Principal)
	b = wire.AppendString(b, e.RequestID)
	b = append(b, e.PrevHash[:]...)
	if version == codecClock {
		b = e.Clock.Append(b)
	}
	return wire.AppendBytes(b, body)
}

// Encode returns the encoding of e.
func (c *Codec) Encode(e *Event) []byte {
	return c.Append(make([]byte, 0, 96+len(e.Collection)+len(e.ID)+len(e.Body)), e)
}

// Decode decodes an event. The result does not alias b.
func (c *Codec) Decode(b []byte) (Event, error) {
	var e Event
	r := wire.NewReader(b)
	version := r.Byte()
	if r.Err() == nil && version != codecVersion && version != codecClock {
		return e, fmt.Errorf("%w: version %d", ErrCorruptEvent, version)
	}
	flags := r.Byte()
	if flags&^knownFlags != 0 {
		return e, fmt.Errorf("%w: unknown flags %#x", ErrCorruptEvent, flags)
	}
	e.Position.Shard = r.Uvarint()
	e.Position.Index = r.Uvarint()
	e.TS = Timestamp(r.Uvarint())
	e.Origin = r.String()
	e.Op = Op(r.Byte())
	e.Collection = r.String()
	e.ID = r.String()
	e.Version = r.Uvarint()
	e.PrevVersion = r.Uvarint()
	e.Principal = r.String()
	e.RequestID = r.String()
	copy(e.PrevHash[:], r.Fixed(len(e.PrevHash)))
	if version == codecClock && r.Err() == nil {
		c, err := vclock.Read(r)
		if err != nil {
			return Event{}, fmt.Errorf("%w: clock: %v", ErrCorruptEvent, err)
		}
		if len(c) == 0 {
			return Event{}, fmt.Errorf("%w: version 2 without a clock", ErrCorruptEvent)
		}
		e.Clock = c
	}
	body := r.Bytes()
	if err := r.Err(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrCorruptEvent, err)
	}
	if r.Len() != 0 {
		return Event{}, fmt.Errorf("%w: %d trailing bytes", ErrCorruptEvent, r.Len())
	}
	if e.Op < OpPut || e.Op > OpRedact {
		return Event{}, fmt.Errorf("%w: unknown op %d", ErrCorruptEvent, e.Op)
	}
	if flags&flagRedacted != 0 {
		if flags&flagCompressed != 0 || len(body) != len(Hash{}) {
			return Event{}, fmt.Errorf("%w: redacted body is not a SHA-256", ErrCorruptEvent)
		}
		e.Body, e.Redacted = append([]byte(nil), body...), true
	} else if flags&flagCompressed != 0 {
		out, err := c.dec.DecodeAll(body, nil)
		if err != nil {
			return Event{}, fmt.Errorf("%w: body: %v", ErrCorruptEvent, err)
		}
		if len(out) > MaxBodySize {
			return Event{}, fmt.Errorf("%w: body of %d bytes", ErrCorruptEvent, len(out))
		}
		e.Body = out
	} else if len(body) > 0 {
		e.Body = append([]byte(nil), body...)
	}
	return e, nil
}
