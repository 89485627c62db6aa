//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	imageFlag   = flag.String("image", "aerolith:latest", "the image under test (make image builds it)")
	composeFlag = flag.String("compose", "../deploy/docker-compose.yml", "the compose file of the three-node cluster")
	holdFlag    = flag.Duration("partition.hold", 0, "how long TestPartition keeps the node cut off at least (to measure healing after long partitions)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// make e2e checks the engine before building the image; a direct `go test -tags e2e`
	// without an engine or the image fails here, once, with the reason.
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", *imageFlag).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: image %s is not available (make image builds it): %v\n%s", *imageFlag, err, out)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// The cluster of deploy/docker-compose.yml: node i (1..3) is service "node<i>" with raft
// alias "raft<i>".
const nodes = 3

// cluster is one running copy of the compose file under its own project name.
type cluster struct {
	t       *testing.T
	project string
	file    string
	env     []string
	ids     map[int]string // container ids; ids[i] is node i's
	added   []string       // containers of nodes added beyond the compose file's (addNode)
}

// testContext bounds a test by budget, and in any case ends it 90 s before go test's
// -timeout would: a timeout panics, and the panic skips the cleanup that removes the
// containers.
func testContext(t *testing.T, budget time.Duration) context.Context {
	deadline := time.Now().Add(budget)
	if d, ok := t.Deadline(); ok && d.Add(-90*time.Second).Before(deadline) {
		deadline = d.Add(-90 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// startCluster brings the three nodes up and waits until every one is ready. It returns
// how long that took, from `docker-compose up` to the last /readyz answering 200.
func startCluster(t *testing.T, ctx context.Context) (*cluster, time.Duration) {
	t.Helper()
	file, err := filepath.Abs(*composeFlag)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, project: "aerolithe2e" + hex.EncodeToString(b[:]), file: file, ids: map[int]string{}}
	c.env = []string{"AEROLITH_IMAGE=" + *imageFlag}
	// Free loopback ports instead of the fixed defaults, so runs can overlap with each
	// other and with a cluster a developer has up.
	for i := 1; i <= nodes; i++ {
		c.env = append(c.env, fmt.Sprintf("AEROLITH_PUBLISH_HTTP_%d=127.0.0.1:", i), fmt.Sprintf("AEROLITH_PUBLISH_GRPC_%d=127.0.0.1:", i))
	}
	t.Cleanup(c.remove)

	start := time.Now()
	if _, err := c.compose(ctx, "up", "-d", "--no-build"); err != nil {
		t.Fatalf("compose up: %v", err)
	}
	for i := 1; i <= nodes; i++ {
		out, err := c.compose(ctx, "ps", "-q", fmt.Sprintf("node%d", i))
		if err != nil || strings.TrimSpace(out) == "" {
			t.Fatalf("container of node%d: %q %v", i, out, err)
		}
		c.ids[i] = strings.TrimSpace(out)
	}
	for i := 1; i <= nodes; i++ {
		c.waitReady(ctx, i)
	}
	took := time.Since(start)
	t.Logf("project %s: three nodes ready %v after docker-compose up", c.project, took.Round(time.Millisecond))
	return c, took
}

// remove takes the cluster down with its networks and volumes. On failure it first logs
// the tail of every node's log. Whatever compose leaves behind is removed by label.
func (c *cluster) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.t.Failed() {
		if out, err := c.compose(ctx, "logs", "--no-color", "--tail=60"); err == nil {
			c.t.Logf("node logs (tail):\n%s", out)
		}
	}
	if len(c.added) > 0 { // attached to the compose file's networks, they would keep them up
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, c.added...)...); err != nil {
			c.t.Logf("removing added nodes: %v", err)
		}
	}
	if _, err := c.compose(ctx, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
		c.t.Logf("compose down: %v", err)
	}
	label := "label=com.docker.compose.project=" + c.project
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", label}
		}
		out, err := docker(ctx, args...)
		if err != nil || strings.TrimSpace(out) == "" {
			continue
		}
		rm := []string{kind, "rm"}
		if kind == "container" {
			rm = []string{"rm", "-f", "-v"}
		}
		if _, err := docker(ctx, append(rm, strings.Fields(out)...)...); err != nil {
			c.t.Errorf("removing leftover %ss of %s: %v", kind, c.project, err)
		}
	}
}

// compose runs docker-compose on this cluster and returns its standard output.
func (c *cluster) compose(ctx context.Context, args ...string) (string, error) {
	return run(ctx, c.env, "docker-compose", append([]string{"--ansi", "never", "-p", c.project, "-f", c.file}, args...)...)
}

func docker(ctx context.Context, args ...string) (string, error) {
	return run(ctx, nil, "docker", args...)
}

func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (c *cluster) network(name string) string { return c.project + "_" + name }

// url returns the base URL of node i's REST API: its address on the api network, which
// the host reaches directly over the bridge. The address may change when the container
// restarts, so it is looked up every time.
func (c *cluster) url(ctx context.Context, i int) string {
	c.t.Helper()
	u, err := c.lookupURL(ctx, i)
	if err != nil {
		c.t.Fatal(err)
	}
	return u
}

func (c *cluster) lookupURL(ctx context.Context, i int) (string, error) {
	format := fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, c.network("api"))
	out, err := docker(ctx, "inspect", "--format", format, c.ids[i])
	ip := strings.TrimSpace(out)
	if err != nil || ip == "" {
		return "", fmt.Errorf("address of node%d on %s: %q %v", i, c.network("api"), out, err)
	}
	return "http://" + ip + ":7070", nil
}

// disconnect cuts node i off the raft network: it can reach no peer and no peer reaches
// it; the api network, and so the test, still reaches it.
func (c *cluster) disconnect(ctx context.Context, i int) {
	c.t.Helper()
	if _, err := docker(ctx, "network", "disconnect", c.network("raft"), c.ids[i]); err != nil {
		c.t.Fatal(err)
	}
}

// connect puts node i back on the raft network under its alias.
func (c *cluster) connect(ctx context.Context, i int) {
	c.t.Helper()
	if _, err := docker(ctx, "network", "connect", "--alias", fmt.Sprintf("raft%d", i), c.network("raft"), c.ids[i]); err != nil {
		c.t.Fatal(err)
	}
}

// waitReady polls node i's /readyz until it answers 200.
func (c *cluster) waitReady(ctx context.Context, i int) {
	c.t.Helper()
	err := poll(ctx, 100*time.Millisecond, func() error {
		u, err := c.lookupURL(ctx, i)
		if err != nil {
			return err
		}
		r, err := do(ctx, "GET", u+"/readyz", "", nil)
		if err != nil {
			return err
		}
		if r.status != 200 {
			return fmt.Errorf("readyz %d %s", r.status, r.body)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("node%d not ready: %v", i, err)
	}
}

// poll calls f every interval until it returns nil or ctx ends; it returns f's last
// error if ctx ends first.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}
