//go:build !linux

package main

import "os/exec"

// dieWithParent has no portable equivalent outside Linux: the test's cleanup kills the
// server, which covers every exit but a killed test process.
func dieWithParent(*exec.Cmd) {}
