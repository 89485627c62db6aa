package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aerolithsdb/aerolith/internal/wire"
	"github.com/aerolithsdb/aerolith/log"
)

// Checkpoint is a node's signed statement that a shard's event at Index has hash Head.
type Checkpoint struct {
	Shard     uint64 `json:"shard"`
	Index     uint64 `json:"index"`
	Head      string `json:"head"` // hex SHA-256 chain hash of the event at Index
	HLC       uint64 `json:"hlc"`  // when it was signed
	Node      uint64 `json:"node"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // hex Ed25519 over SignedBytes
}

// SignedBytes is what a checkpoint's signature covers.
func (c *Checkpoint) SignedBytes() []byte {
	b := []byte("aerolith-checkpoint-v1")
	b = wire.AppendUvarint(b, c.Shard)
	b = wire.AppendUvarint(b, c.Index)
	b = wire.AppendString(b, c.Head)
	b = wire.AppendUvarint(b, c.HLC)
	b = wire.AppendUvarint(b, c.Node)
	return wire.AppendString(b, c.KeyID)
}

// Key is a node's signing key.
type Key struct {
	ID      string
	Public  ed25519.PublicKey
	private ed25519.PrivateKey
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadOrCreateKey reads the node's key from dir, creating it (mode 0600) on first use.
func LoadOrCreateKey(dir string) (*Key, error) {
	path := filepath.Join(dir, "ed25519.key")
	seed, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			return nil, fmt.Errorf("audit: write key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("audit: read key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: %s is not an Ed25519 seed", path)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{ID: KeyID(pub), Public: pub, private: priv}, nil
}

// Sign fills in the checkpoint's key id and signature.
func (k *Key) Sign(c *Checkpoint) {
	c.KeyID = k.ID
	c.Signature = hex.EncodeToString(ed25519.Sign(k.private, c.SignedBytes()))
}

// VerifySignature checks a checkpoint's signature against keys (key id → public key).
func VerifySignature(c *Checkpoint, keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Errorf("unknown key %q", c.KeyID)
	}
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return errors.New("bad signature")
	}
	return nil
}

// HashHex renders a chain hash.
func HashHex(h log.Hash) string { return hex.EncodeToString(h[:]) }
