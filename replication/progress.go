package replication

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aerolithsdb/aerolith/feed"
	"github.com/aerolithsdb/aerolith/internal/durable"
)

// progressFile is the name of the shipping progress file in Config.DataDir.
const progressFile = "shipped"

// progress is the durable record of how far the shipper has shipped: a feed resume token
// such that every local event up to it was acknowledged by Kafka. It is written to a
// temporary file, fsynced, renamed over the old one, and the directory fsynced, so a
// crash leaves either the old or the new token, never a torn one.
type progress struct {
	dir string
}

// load returns the stored token ("" when none was stored yet).
func (p progress) load() (string, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, progressFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("replication: read progress: %w", err)
	}
	tok := string(bytes.TrimSpace(b))
	if _, err := feed.DecodeToken(tok); err != nil {
		return "", fmt.Errorf("replication: progress file %s: %w", filepath.Join(p.dir, progressFile), err)
	}
	return tok, nil
}

// store writes tok durably.
func (p progress) store(tok string) error {
	if err := durable.WriteFile(p.dir, progressFile, []byte(tok+"\n")); err != nil {
		return fmt.Errorf("replication: write progress: %w", err)
	}
	return nil
}
