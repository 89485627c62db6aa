package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestTwoDatacenterProcesses runs the README's two datacenters as processes: `aerolith
// dev-kafka` and two servers with --kafka-brokers. Both sides write the same documents;
// west is killed with SIGKILL in the middle and restarted on its data (its shipping
// progress may be behind what Kafka has, so it ships some events again). Then both
// datacenters' content digests must be equal, every acknowledged write of a document
// written once present on both sides, and GET /v1/replication must show the links.
func TestTwoDatacenterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("two-datacenter process test: builds the binary and runs three processes; skipped with -short")
	}
	began := time.Now()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	t.Logf("binary built in %v", time.Since(began).Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	port := func() string { return strconv.Itoa(loopbackPort(t, rng)) }
	kafka := "127.0.0.1:" + port()
	logPath := filepath.Join(dir, "xdc.log")
	kp := startServer(t, bin, logPath, "dev-kafka", "dev-kafka", "--addr", kafka)
	t.Cleanup(func() { kp.kill(t) })
	type dc struct {
		name, http string
		args       []string
		proc       *serverProc
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	start := func(d *dc, what string) {
		d.proc = startServer(t, bin, logPath, what, d.args...)
		d.proc.waitReady(t, hc, "http://"+d.http, 2*time.Minute)
	}
	var dcs []*dc
	for _, name := range []string{"east", "west"} {
		h := "127.0.0.1:" + port()
		d := &dc{name: name, http: h, args: []string{"server", "--dc", name, "--data-dir", filepath.Join(dir, name),
			"--http-addr", h, "--raft-addr", "127.0.0.1:" + port(), "--grpc-addr", "off", "--shards", "2",
			"--kafka-brokers", kafka, "--log-level", "warn"}}
		start(d, name)
		dcs = append(dcs, d)
		t.Cleanup(func() {
			select {
			case <-d.proc.exited:
			default:
				d.proc.kill(t)
			}
		})
	}
	east, west := dcs[0], dcs[1]
	put := func(d *dc, coll, id, body string) (int, error) {
		req, err := http.NewRequest(http.MethodPut, "http://"+d.http+"/v1/collections/"+coll+"/docs/"+id, bytes.NewReader([]byte(body)))
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	get := func(d *dc, path string) (int, []byte) {
		resp, err := hc.Get("http://" + d.http + path)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// Writers on both sides: shared documents (conflicts, lww) and documents written once.
	var mu sync.Mutex
	var once []string // "dc/id" of acknowledged write-once documents
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range dcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, err := put(d, "shared", fmt.Sprintf("d%d", i%5), fmt.Sprintf(`{"dc":%q,"n":%d}`, d.name, i))
				if err != nil || code >= 300 {
					continue // west is down for a while
				}
				id := fmt.Sprintf("%s-%d", d.name, i)
				if code, err := put(d, "once", id, `{"v":1}`); err == nil && code < 300 {
					mu.Lock()
					once = append(once, id)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor := func(d time.Duration) {
		select {
		case <-time.After(d): // the writers run meanwhile
		case <-west.proc.exited:
			if !west.proc.killed.Load() {
				t.Fatalf("west exited: %v\n%s", west.proc.waitErr, logTail(logPath, 30))
			}
		}
	}
	waitFor(2 * time.Second)
	west.proc.kill(t)
	waitFor(time.Second)
	start(west, "west restarted")
	waitFor(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d write-once documents acknowledged", len(once))
	converging := time.Now()

	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, de := get(east, "/v1/admin/digest?scope=content")
		_, dw := get(west, "/v1/admin/digest?scope=content")
		if bytes.Equal(de, dw) && bytes.Contains(de, []byte(`"digest"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("content digests differ after 60s: east %s west %s\n%s", de, dw, logTail(logPath, 40))
		}
		<-tick.C
	}
	t.Logf("converged %v after the writers stopped", time.Since(converging).Round(time.Millisecond))
	for _, id := range once {
		for _, d := range dcs {
			if code, body := get(d, "/v1/collections/once/docs/"+id); code != http.StatusOK {
				t.Fatalf("%s: once/%s: %d %s", d.name, id, code, body)
			}
		}
	}
	code, body := get(west, "/v1/replication")
	var st struct {
		Enabled bool `json:"enabled"`
		Links   []struct {
			Direction string `json:"direction"`
			Topic     string `json:"topic"`
			State     string `json:"state"`
			Events    uint64 `json:"events"`
		} `json:"links"`
	}
	if err := json.Unmarshal(body, &st); code != 200 || err != nil || !st.Enabled || len(st.Links) != 2 {
		t.Fatalf("west GET /v1/replication: %d %s %v", code, body, err)
	}
	for _, l := range st.Links {
		if (l.State != "shipping" && l.State != "applying") || (l.Direction == "apply" && (l.Topic != "aerolith.east" || l.Events == 0)) {
			t.Fatalf("west link %+v in %s", l, body)
		}
	}
}
