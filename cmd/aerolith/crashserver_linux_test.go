package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL the server if the test process dies first (a
// killed `go test`, a closed output pipe), so no server outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
