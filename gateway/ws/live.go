package ws

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/feed"
)

// live runs a live query: the first result, then, whenever events of the collection
// arrive, the query again (at most once per Limits.LiveQueryInterval) and the deltas from
// the previous result. fs was subscribed from "now" before the first run, so no event that
// could change the result is missed; a re-run reflects at least every event seen so far.
func (c *conn) live(ctx context.Context, sb *sub, fs *feed.Subscription, q db.QueryRequest) {
	res, err := c.s.cfg.Store.Query(ctx, q)
	if err != nil {
		if ctx.Err() == nil {
			c.subFailed(ctx, sb.id, err)
		}
		return
	}
	token := fs.Token()
	docs := make([]docBody, len(res.Docs))
	for i, d := range res.Docs {
		docs[i] = docBodyOf(d)
	}
	b, err := json.Marshal(resultMsg{Type: "result", Sub: sb.id, Docs: docs, Token: token})
	if err != nil || !c.enqueue(ctx, outMsg{sub: sb.id, data: b}) {
		return
	}
	interval := c.s.lim.LiveQueryInterval
	last, lastRun, dirty := res.Docs, time.Now(), false
	for {
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if dirty {
			nctx, cancel = context.WithDeadline(ctx, lastRun.Add(interval))
		}
		m, err := fs.Next(nctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			token = m.Token
			dirty = dirty || m.Kind == feed.KindEvent
		case !errors.Is(err, context.DeadlineExceeded):
			c.subFailed(ctx, sb.id, err)
			return
		}
		if !dirty || time.Since(lastRun) < interval {
			continue
		}
		res, err := c.s.cfg.Store.Query(ctx, q)
		lastRun, dirty = time.Now(), false
		if err != nil {
			if ctx.Err() == nil {
				c.subFailed(ctx, sb.id, err)
			}
			return
		}
		ds := Diff(last, res.Docs)
		last = res.Docs
		for i, d := range ds {
			msg := deltaMsg{Type: "delta", Sub: sb.id, Op: d.Op, Doc: docBodyOf(d.Doc), Last: i == len(ds)-1, Token: token}
			if d.Op == OpRemove {
				msg.Doc.Doc = nil
			} else {
				msg.Index = &d.Index
			}
			b, err := json.Marshal(msg)
			if err != nil {
				c.subFailed(ctx, sb.id, err)
				return
			}
			if !c.enqueue(ctx, outMsg{sub: sb.id, data: b}) {
				return
			}
		}
	}
}
