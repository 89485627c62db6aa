// Command aerolith is the aerolithsDB binary: the server, a command-line client and the
// bench load suites.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitCode carries a process exit status through cobra's error return.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string { return e.err.Error() }
func (e *exitCode) Unwrap() error { return e.err }

// usageError marks bad flags or arguments: exit status 2.
func usageError(err error) error { return &exitCode{code: 2, err: err} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "aerolith",
		Short:         "aerolithsDB: an event-sourced, log-structured document database",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newServerCmd())
	root.AddCommand(newDevKafkaCmd())
	root.AddCommand(newClientCmds()...)
	root.AddCommand(newBenchCmd())
	root.AddCommand(newAuditCmd())
	root.AddCommand(newReplayCmd())
	root.AddCommand(newClusterCmd())
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "aerolith:", err)
	var ec *exitCode
	if errors.As(err, &ec) {
		os.Exit(ec.code)
	}
	os.Exit(1)
}
