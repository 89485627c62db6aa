package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/aerolithsdb/aerolith/replication"
	"github.com/spf13/cobra"
)

func newDevKafkaCmd() *cobra.Command {
	var addr, dataDir string
	cmd := &cobra.Command{
		Use:   "dev-kafka",
		Short: "Run an in-process Kafka-protocol broker (franz-go's kfake) for trying replication on one machine",
		Long: "dev-kafka runs a one-broker Kafka-protocol server in this process, enough for two datacenters to\n" +
			"replicate through on one machine. It is for development and demos, not production. Without\n" +
			"--data-dir everything is kept in memory and lost when it stops.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			k, err := replication.StartDevKafka(addr, dataDir)
			if err != nil {
				return err
			}
			fmt.Printf("aerolith: dev Kafka broker on %s (kfake; for development only)\n", k.Addr())
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			k.Close()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:9092", "listen address (port 0 picks one)")
	f.StringVar(&dataDir, "data-dir", "", "keep topics, records and offsets here across restarts (default: in memory)")
	return cmd
}
