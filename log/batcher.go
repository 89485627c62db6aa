package log

import (
	"context"
	"fmt"
	"time"
)

type result struct {
	data []byte
	err  error
}

type pending struct {
	ctx  context.Context // the caller's: the command is not proposed once it ends
	cmd  []byte
	done chan result // buffered, capacity 1
}

// batcher coalesces the commands queued for one shard into proposals (group commit). Its
// run loop takes a free in-flight slot, waits for a first command, takes whatever else is
// already queued up to the batch limits, and proposes them together from a goroutine of
// its own, so that while MaxInFlight proposals are outstanding the next batch grows.
type batcher struct {
	host  *Host
	shard uint64
	reqs  chan *pending
	sem   chan struct{}
}

func (b *batcher) run() {
	cfg := &b.host.cfg
	for {
		select {
		case b.sem <- struct{}{}:
		case <-b.host.stop:
			return
		}
		var first *pending
		select {
		case first = <-b.reqs:
		case <-b.host.stop:
			return
		}
		batch := []*pending{first}
		size := len(first.cmd)
	drain:
		for len(batch) < cfg.MaxBatch && size < cfg.MaxBatchBytes {
			select {
			case p := <-b.reqs:
				batch = append(batch, p)
				size += len(p.cmd)
			default:
				break drain
			}
		}
		b.host.wg.Add(1)
		go func() {
			defer b.host.wg.Done()
			defer func() { <-b.sem }()
			b.flush(batch)
		}()
	}
}

// flush proposes the batch's commands as one entry. Commands whose callers gave up are
// answered as not proposed and left out; the proposal (and its retries while raft is not
// ready) lasts until the last remaining caller's deadline, so no command is proposed
// after everyone who asked for it stopped waiting.
func (b *batcher) flush(all []*pending) {
	batch := all[:0:0]
	var last time.Time
	for _, p := range all {
		if err := p.ctx.Err(); err != nil {
			p.done <- result{err: fmt.Errorf("%w: shard %d: %v", ErrUnavailable, b.shard, err)}
			continue
		}
		batch = append(batch, p)
		d, ok := p.ctx.Deadline()
		if !ok {
			d = time.Now().Add(b.host.cfg.ProposeTimeout)
		}
		if d.After(last) {
			last = d
		}
	}
	if len(batch) == 0 {
		return
	}
	cmds := make([][]byte, len(batch))
	for i, p := range batch {
		cmds[i] = p.cmd
	}
	ctx, cancel := context.WithDeadline(context.Background(), last)
	defer cancel()
	res, err := b.host.propose(ctx, b.shard, cmds)
	for i, p := range batch {
		if err != nil {
			p.done <- result{err: err}
		} else {
			p.done <- result{data: res[i]}
		}
	}
}

// drainClosed answers every command still queued after the run loop stopped.
func (b *batcher) drainClosed() {
	for {
		select {
		case p := <-b.reqs:
			p.done <- result{err: ErrClosed}
		default:
			return
		}
	}
}
