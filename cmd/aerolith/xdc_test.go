package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/internal/loopback"
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
	port := func() string { return strconv.Itoa(loopback.PortOn(t, "127.0.0.1")) }
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

// TestTwoDatacentersPlaced ships a datacenter whose nodes do not hold every shard: east is
// three processes in placed hosting with replication factor 1 (each shard on one node),
// shipping through the node that leads the meta shard (--kafka-ship-elect); west is one
// node. The shipping node reads the events of the shards it does not hold from the nodes
// that do (the L3 tier), and writes through every east node, most of them to shards the
// node does not hold, must all reach west with their bodies.
func TestTwoDatacentersPlaced(t *testing.T) {
	if testing.Short() {
		t.Skip("two-datacenter process test: builds the binary and runs five processes; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	logPath := filepath.Join(dir, "xdc.log")
	kafka := "127.0.0.1:" + strconv.Itoa(loopback.PortOn(t, "127.0.0.1"))
	kp := startServer(t, bin, logPath, "dev-kafka", "dev-kafka", "--addr", kafka)
	t.Cleanup(func() { kp.kill(t) })
	hc := &http.Client{Timeout: 10 * time.Second}
	type node struct {
		name, base string
		proc       *serverProc
	}
	start := func(name string, args ...string) *node {
		n := &node{name: name}
		for i, a := range args {
			if a == "--http-addr" {
				n.base = "http://" + args[i+1]
			}
		}
		n.proc = startServer(t, bin, logPath, name, args...)
		t.Cleanup(func() {
			select {
			case <-n.proc.exited:
			default:
				n.proc.kill(t)
			}
		})
		return n
	}
	common := []string{"--grpc-addr", "off", "--shards", "4", "--kafka-brokers", kafka, "--log-level", "warn"}
	var east []*node
	members, https := "", []string{}
	for id := 1; id <= 3; id++ {
		host := fmt.Sprintf("127.0.0.%d", 30+id)
		https = append(https, fmt.Sprintf("%s:%d", host, loopback.PortOn(t, host)))
		if id > 1 {
			members += ","
		}
		members += fmt.Sprintf("%d=%s:%d", id, host, loopback.PortOn(t, host))
	}
	for id := 1; id <= 3; id++ {
		raft := strings.SplitN(strings.Split(members, ",")[id-1], "=", 2)[1]
		east = append(east, start(fmt.Sprintf("east node %d", id), append([]string{"server", "--dc", "east", "--node-id", strconv.Itoa(id),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("east%d", id)), "--http-addr", https[id-1], "--raft-addr", raft,
			"--initial-members", members, "--kafka-ship-elect"}, common...)...))
	}
	west := start("west", append([]string{"server", "--dc", "west", "--data-dir", filepath.Join(dir, "west"),
		"--http-addr", "127.0.0.1:" + strconv.Itoa(loopback.PortOn(t, "127.0.0.1")), "--raft-addr", "127.0.0.1:" + strconv.Itoa(loopback.PortOn(t, "127.0.0.1"))}, common...)...)
	for _, n := range append(slices.Clone(east), west) {
		n.proc.waitReady(t, hc, n.base, 2*time.Minute)
	}
	call := func(method, url, body string) (int, []byte) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	poll := func(what string, limit time.Duration, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			done, why := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s: %s\n%s", what, limit, why, logTail(logPath, 40))
			}
			<-tick.C
		}
	}
	type shardDigest struct {
		Shard  uint64 `json:"shard"`
		Digest string `json:"digest"`
	}
	digests := func(n *node) map[uint64]string { // the shards n holds
		code, body := call(http.MethodGet, n.base+"/v1/admin/digest", "")
		var d struct {
			Shards []shardDigest `json:"shards"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &d) != nil {
			return nil
		}
		out := map[uint64]string{}
		for _, s := range d.Shards {
			out[s.Shard] = s.Digest
		}
		return out
	}

	for _, c := range []struct{ path, body string }{
		{"/v1/cluster/replication-factor", `{"replication_factor":1}`},
		{"/v1/cluster/hosting", `{"hosting":"placed"}`},
	} {
		if code, body := call(http.MethodPut, east[0].base+c.path, c.body); code >= 300 {
			t.Fatalf("PUT %s: %d %s", c.path, code, body)
		}
	}
	holder := map[uint64]*node{}
	poll("each shard held by one east node", 90*time.Second, func() (bool, string) {
		clear(holder)
		var held []string
		for _, n := range east {
			d := digests(n)
			held = append(held, fmt.Sprintf("%s: %d shards", n.name, len(d)))
			for s := range d {
				if holder[s] != nil {
					return false, fmt.Sprint(held, "; shard ", s, " on two nodes")
				}
				holder[s] = n
			}
		}
		return len(holder) == 4, fmt.Sprint(held)
	})

	// Writes through every east node; a node that holds one or two of the four shards
	// sends the others' through the nodes that hold them.
	const docs = 120
	for i := range docs {
		n := east[i%len(east)]
		url := fmt.Sprintf("%s/v1/collections/placed/docs/p%d", n.base, i)
		poll(fmt.Sprintf("write p%d through %s", i, n.name), 20*time.Second, func() (bool, string) {
			code, body := call(http.MethodPut, url, fmt.Sprintf(`{"n":%d}`, i))
			return code >= 200 && code < 300, fmt.Sprintf("%d %s", code, body)
		})
	}
	arrived := 0
	poll("every document on west", 60*time.Second, func() (bool, string) {
		for ; arrived < docs; arrived++ {
			code, body := call(http.MethodGet, fmt.Sprintf("%s/v1/collections/placed/docs/p%d", west.base, arrived), "")
			if code != http.StatusOK {
				return false, fmt.Sprintf("placed/p%d: %d %s", arrived, code, body)
			}
			var d struct {
				Doc json.RawMessage `json:"doc"`
			}
			if err := json.Unmarshal(body, &d); err != nil || string(d.Doc) != fmt.Sprintf(`{"n":%d}`, arrived) {
				t.Fatalf("west: placed/p%d reads %s", arrived, body)
			}
		}
		return true, ""
	})
	// The shipping node read events of shards it does not hold through other nodes.
	var shipper *node
	for _, n := range east {
		if _, body := call(http.MethodGet, n.base+"/v1/replication", ""); bytes.Contains(body, []byte(`"shipping"`)) {
			shipper = n
		}
	}
	if shipper == nil {
		t.Fatal("no east node reports shipping")
	}
	_, metrics := call(http.MethodGet, shipper.base+"/metrics", "")
	if !bytes.Contains(metrics, []byte(`aerolith_peer_calls_total{op="events",result="ok"}`)) {
		t.Fatalf("%s ships but made no peer call for events of a shard it does not hold", shipper.name)
	}
	t.Logf("%d documents written through three east nodes in placed hosting reached west; %s shipped", docs, shipper.name)
}
