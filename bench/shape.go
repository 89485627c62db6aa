package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Shape is what a number needs beside it to mean anything: the build, the machine, the
// target and the payload.
type Shape struct {
	GoVersion  string `json:"go_version"`
	Version    string `json:"aerolith_version"` // module version of the bench binary, or "unknown"
	Commit     string `json:"commit"`           // vcs revision, or "unknown"
	CommitTime string `json:"commit_time,omitempty"`
	Modified   bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`

	// Target is "embedded" (a throwaway node in this process, sharing its CPUs with the
	// clients) or "remote".
	Target    string `json:"target"`
	NodeCount int    `json:"node_count"`
	// Shards is the target's raft shard count when known (embedded runs; Config.Shards).
	Shards    int    `json:"shards,omitempty"`
	Protocol  string `json:"protocol"`
	Clients   int    `json:"clients"`
	Fsync     bool   `json:"fsync"`
	FsyncNote string `json:"fsync_note"`
	// DiskFsync is the fsync latency of the node's data directory, measured just before the
	// run (embedded runs only: a remote node's disk cannot be probed from here).
	DiskFsync *FsyncProbe `json:"disk_fsync,omitempty"`

	PayloadBytes int `json:"payload_bytes"` // value bytes per document: field_count × field_length
	DocBytes     int `json:"doc_bytes"`     // JSON body of a full document
	FieldCount   int `json:"field_count"`
	FieldLength  int `json:"field_length"`
	BatchSize    int `json:"batch_size,omitempty"` // write-batch only
	// Subscribers are the change streams open during the run (changefeed only).
	Subscribers int `json:"subscribers,omitempty"`
}

// FsyncProbe is the latency of small synced writes on a directory.
type FsyncProbe struct {
	Dir     string  `json:"dir"`
	Writes  int     `json:"writes"`
	P50Us   int64   `json:"p50_us"`
	P99Us   int64   `json:"p99_us"`
	MaxUs   int64   `json:"max_us"`
	PerSec  float64 `json:"fsyncs_per_sec"`
	Seconds float64 `json:"seconds"`
}

const fsyncNote = "the server always fsyncs its raft log before acknowledging a write (dragonboat; not configurable), so every write figure here is with fsync on"

// hostShape fills in the build and machine part of the shape.
func hostShape() Shape {
	s := Shape{
		GoVersion:  runtime.Version(),
		Version:    "unknown",
		Commit:     "unknown",
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel("/proc/cpuinfo"),
		Fsync:      true,
		FsyncNote:  fsyncNote,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			s.Version = v
		}
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				s.Commit = kv.Value
			case "vcs.time":
				s.CommitTime = kv.Value
			case "vcs.modified":
				s.Modified = kv.Value == "true"
			}
		}
	}
	return s
}

// cpuModel returns the first "model name" of a /proc/cpuinfo file, or "unknown".
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// ProbeFsync writes and fsyncs a 4 KiB block in dir up to n times or for at most limit,
// and reports the latency. The probe file is removed.
func ProbeFsync(dir string, n int, limit time.Duration) (*FsyncProbe, error) {
	f, err := os.CreateTemp(dir, ".fsync-probe-*")
	if err != nil {
		return nil, fmt.Errorf("bench: fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	h := newHist()
	start := time.Now()
	for i := 0; i < n && time.Since(start) < limit; i++ {
		t := time.Now()
		if _, err := f.WriteAt(block, int64(i%256)*4096); err != nil {
			return nil, fmt.Errorf("bench: fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("bench: fsync probe: %w", err)
		}
		recordDur(h, time.Since(t))
	}
	return fsyncProbeOf(filepath.Clean(dir), h, time.Since(start)), nil
}

func fsyncProbeOf(dir string, h *hdrhistogram.Histogram, took time.Duration) *FsyncProbe {
	p := &FsyncProbe{Dir: dir, Writes: int(h.TotalCount()), P50Us: h.ValueAtQuantile(50), P99Us: h.ValueAtQuantile(99), MaxUs: h.Max(), Seconds: round3(took.Seconds())}
	if took > 0 {
		p.PerSec = round1(float64(p.Writes) / took.Seconds())
	}
	return p
}
