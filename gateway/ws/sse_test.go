package ws_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/gateway/ws"
)

// frame is one Server-Sent Events frame, or a comment.
type frame struct {
	id, event, data, comment string
}

type sseStream struct {
	t   *testing.T
	res *http.Response
	r   *bufio.Reader
}

func openSSE(t *testing.T, url string, header ...string) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseStream{t: t, res: res, r: bufio.NewReader(res.Body)}
}

// next reads the next frame or comment; the test's deadline bounds it (the server sends a
// heartbeat at least every HeartbeatInterval).
func (s *sseStream) next() (frame, error) {
	var f frame
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f != (frame{}) {
				return f, nil
			}
		case strings.HasPrefix(line, ":"):
			return frame{comment: strings.TrimSpace(line[1:])}, nil
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				f.id = v
			case "event":
				f.event = v
			case "data":
				f.data += v
			}
		}
	}
}

// TestSSE reads a change stream as Server-Sent Events, drops it, resumes with
// Last-Event-ID (which wins over from=now), sees heartbeats, and sees the stream end
// with a closing event when the node shuts down.
func TestSSE(t *testing.T) {
	n := startNode(t, nodeConfig(t, ws.Limits{HeartbeatInterval: 100 * time.Millisecond}))
	defer n.Close()
	api := rest{t: t, base: "http://" + n.HTTPAddr()}
	for i := 0; i < 30; i++ {
		api.must("PUT", fmt.Sprintf("/v1/collections/c/docs/d%d", i), fmt.Sprintf(`{"i":%d}`, i))
		api.must("PUT", fmt.Sprintf("/v1/collections/skip/docs/d%d", i), `{}`)
	}
	url := "http://" + n.HTTPAddr() + "/v1/changes?collections=c&include=after&from=beginning"
	got := map[uint64][]uint64{}
	read := func(s *sseStream, want int) string {
		t.Helper()
		last := ""
		for events := 0; events < want; {
			f, err := s.next()
			if err != nil {
				t.Fatal(err)
			}
			if f.comment != "" {
				continue
			}
			if f.id == "" {
				t.Fatalf("frame without id: %+v", f)
			}
			last = f.id
			if f.event != "event" {
				continue
			}
			var e feed.Envelope
			if err := json.Unmarshal([]byte(f.data), &e); err != nil {
				t.Fatal(err)
			}
			if e.Collection != "c" || e.Token != f.id || len(e.After) == 0 {
				t.Fatalf("event %+v with id %s", e, f.id)
			}
			got[e.Position.Shard] = append(got[e.Position.Shard], e.Position.Index)
			events++
		}
		return last
	}
	s := openSSE(t, url)
	last := read(s, 12)
	s.res.Body.Close()
	for i := 30; i < 50; i++ {
		api.must("PUT", fmt.Sprintf("/v1/collections/c/docs/d%d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	s = openSSE(t, strings.Replace(url, "from=beginning", "from=now", 1), "Last-Event-ID", last)
	read(s, 38)
	// Each shard's positions of collection c are increasing, none repeated; with the skipped
	// collection interleaved, compare against the events of c in the store.
	all := 0
	for sh, idx := range got {
		if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) {
			t.Fatalf("shard %d: %v", sh, idx)
		}
		all += len(idx)
	}
	if all != 50 {
		t.Fatalf("received %d events of c, want 50", all)
	}
	// Heartbeats while idle.
	for {
		f, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.comment == "ping" {
			break
		}
	}
	// A bad token is refused before the stream starts.
	req, _ := http.NewRequest("GET", strings.Replace(url, "from=beginning", "from=token&token=nope", 1), nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error struct{ Code string } }
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 400 || body.Error.Code != "invalid_token" {
		t.Fatalf("bad token: status %d, code %q", res.StatusCode, body.Error.Code)
	}
	// Shutdown ends the stream with a closing event.
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	for {
		f, err := s.next()
		if err != nil {
			t.Fatalf("stream ended without a closing event: %v", err)
		}
		if f.event == "closing" {
			if !strings.Contains(f.data, `"reason":"shutdown"`) || !strings.Contains(f.data, `"token"`) {
				t.Fatalf("closing event %+v", f)
			}
			break
		}
	}
	if _, err := s.next(); err == nil {
		t.Fatal("the stream goes on after closing")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	noLeaks(t)
}
