package durable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemporaries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(dir, "f.json", []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "f.json"))
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %d entries (%v), want only f.json", len(entries), err)
	}
}

func TestWriteFileFailsWhereItCannotWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(file, "f", []byte("x")); err == nil { // dir is a file
		t.Fatal("writing under a regular file succeeded")
	}
}
