package log

import (
	"context"
)

type result struct {
	data []byte
	err  error
}

type pending struct {
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

func (b *batcher) flush(batch []*pending) {
	cmds := make([][]byte, len(batch))
	for i, p := range batch {
		cmds[i] = p.cmd
	}
	res, err := b.host.propose(context.Background(), b.shard, cmds)
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
