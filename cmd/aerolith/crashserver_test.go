package main

// Process plumbing for the crash test: build the binary, pick loopback ports, start
// `aerolith server` as a child, wait for /readyz, SIGKILL it, and show its log on failure.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/aerolith into dir and returns the binary's path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "aerolith")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/aerolithsdb/aerolith/cmd/aerolith")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/aerolith: %v\n%s", err, out)
	}
	return bin
}

// serverProc is one run of `aerolith server`.
type serverProc struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid after exited is closed
	killed  atomic.Bool   // set just before the test sends SIGKILL
}

// startServer starts the binary with args, appending its stdout and stderr to logPath
// after a header line naming the run.
func startServer(t *testing.T, bin, logPath, header string, args ...string) *serverProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	fmt.Fprintf(logf, "\n===== %s: %s %s =====\n", header, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *serverProc) kill(t *testing.T) {
	t.Helper()
	p.killed.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL server: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("server pid %d did not exit within 30s of SIGKILL", p.cmd.Process.Pid)
	}
}

// waitReady polls GET /readyz until it answers 200. It fails the test if the process exits
// first or the deadline passes.
func (p *serverProc) waitReady(t *testing.T, hc *http.Client, base string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return time.Since(start)
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		select {
		case <-p.exited:
			t.Fatalf("server exited before it was ready: %v (last /readyz: %s)", p.waitErr, last)
		case <-deadline.C:
			t.Fatalf("server not ready after %s (last /readyz: %s)", timeout, last)
		case <-tick.C:
		}
	}
}

// logTail returns the last n lines of the file at path.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
