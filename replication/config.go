package replication

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultTopicPrefix names the topics: one per source datacenter, TopicPrefix + DC.
const DefaultTopicPrefix = "aerolith."

// Config configures a Replicator. Zero values mean defaults; Brokers, DC and (when
// shipping) DataDir have none.
type Config struct {
	Brokers []string // Kafka bootstrap brokers, host:port
	DC      string   // this datacenter
	Cluster string   // cluster name, shown as the records' source.name (default "aerolith")
	NodeID  uint64   // this node, for the Kafka client id (default 1)
	DataDir string   // where the shipping progress is kept (required unless NoShip)

	TopicPrefix string // default DefaultTopicPrefix; this DC ships to TopicPrefix+DC
	// Remotes are the datacenters whose topics are applied here. Empty: every topic
	// that starts with TopicPrefix except this DC's own, rediscovered every
	// DiscoverInterval.
	Remotes           []string
	Partitions        int    // partitions of a topic the shipper creates (default 4)
	ReplicationFactor int16  // replication factor of a created topic (default: the broker's)
	Group             string // the applier's consumer group (default "aerolith-apply-" + DC)

	NoShip  bool // this node does not ship (another node of the datacenter does)
	NoApply bool // this node does not apply
	// Elect ships from whichever node of the datacenter's cluster leads its meta shard,
	// moving with that leadership, with the progress kept in the meta shard (as well as in
	// DataDir). Every node of the datacenter runs with Elect; none with NoShip.
	Elect bool

	Linger           time.Duration // producer linger (default 1ms)
	MaxBatch         int           // records per ApplyRemote call (default 500)
	DiscoverInterval time.Duration // how often remote topics are looked for (default 10s)
	FlushInterval    time.Duration // how often shipping progress is written (default 200ms)
	PolicyTTL        time.Duration // how long a collection's policy is cached by the shipper (default 1s)
	MaxBackoff       time.Duration // longest wait between retries (default 5s)

	// TLS to the brokers: enabled by TLS or by any of the files.
	TLS                   bool
	TLSCAFile             string // PEM roots (default: the system's)
	TLSCertFile           string // client certificate (PEM), with TLSKeyFile
	TLSKeyFile            string
	TLSServerName         string
	TLSInsecureSkipVerify bool

	// SASL: "" (none), "plain", "scram-sha-256" or "scram-sha-512".
	SASLMechanism string
	SASLUser      string
	SASLPassword  string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Enabled reports whether replication is configured (brokers are given).
func (c Config) Enabled() bool { return len(c.Brokers) > 0 }

var dcName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("replication: at least one broker is required"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("replication: broker %q: %v", b, err))
		}
	}
	if !dcName.MatchString(c.DC) {
		errs = append(errs, fmt.Errorf("replication: datacenter name %q must match %s", c.DC, dcName))
	}
	for _, r := range c.Remotes {
		if !dcName.MatchString(r) {
			errs = append(errs, fmt.Errorf("replication: remote datacenter name %q must match %s", r, dcName))
		} else if r == c.DC {
			errs = append(errs, fmt.Errorf("replication: remote datacenter %q is this datacenter", r))
		}
	}
	if c.TopicPrefix != "" && !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,180}$`).MatchString(c.TopicPrefix) {
		errs = append(errs, fmt.Errorf("replication: topic prefix %q: only letters, digits, '.', '_' and '-'", c.TopicPrefix))
	}
	if !c.NoShip && c.DataDir == "" {
		errs = append(errs, errors.New("replication: a data dir is required to ship"))
	}
	if c.Elect && c.NoShip {
		errs = append(errs, errors.New("replication: elected shipping and no shipping exclude each other"))
	}
	if c.NoShip && c.NoApply {
		errs = append(errs, errors.New("replication: neither shipping nor applying"))
	}
	if c.Partitions < 0 || c.Partitions > 10000 {
		errs = append(errs, fmt.Errorf("replication: partitions must be in 1..10000, got %d", c.Partitions))
	}
	if c.ReplicationFactor < 0 {
		errs = append(errs, errors.New("replication: replication factor must not be negative"))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, errors.New("replication: max batch must not be negative"))
	}
	if c.Linger < 0 || c.DiscoverInterval < 0 || c.FlushInterval < 0 || c.PolicyTTL < 0 || c.MaxBackoff < 0 {
		errs = append(errs, errors.New("replication: durations must not be negative"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("replication: a TLS client certificate needs both the cert and the key file"))
	}
	switch c.SASLMechanism {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("replication: SASL user or password given without a mechanism"))
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASLUser == "" {
			errs = append(errs, errors.New("replication: SASL needs a user"))
		}
	default:
		errs = append(errs, fmt.Errorf("replication: SASL mechanism must be plain, scram-sha-256 or scram-sha-512, got %q", c.SASLMechanism))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Cluster == "" {
		c.Cluster = "aerolith"
	}
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.Group == "" {
		c.Group = "aerolith-apply-" + c.DC
	}
	if c.Linger == 0 {
		c.Linger = time.Millisecond
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
	if c.DiscoverInterval == 0 {
		c.DiscoverInterval = 10 * time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.PolicyTTL == 0 {
		c.PolicyTTL = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Topic returns the topic a datacenter ships to.
func (c Config) Topic(dc string) string {
	p := c.TopicPrefix
	if p == "" {
		p = DefaultTopicPrefix
	}
	return p + dc
}

// clientOpts returns the Kafka client options every client of this replicator shares.
func (c Config) clientOpts(role string, hooks ...kgo.Hook) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(fmt.Sprintf("aerolith-%s-%d-%s", c.DC, c.NodeID, role)),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(c.MaxBackoff, time.Duration(tries)*100*time.Millisecond)
		}),
	}
	if len(hooks) > 0 {
		opts = append(opts, kgo.WithHooks(hooks...))
	}
	if c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // opt-in
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("replication: TLS CA: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("replication: TLS CA %s: no certificate found", c.TLSCAFile)
			}
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("replication: TLS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	auth := scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}
	switch c.SASLMechanism {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
	}
	return opts, nil
}
