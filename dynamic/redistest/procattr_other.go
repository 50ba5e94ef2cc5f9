//go:build !linux

package redistest

import "syscall"

// procAttr puts redis-server in a process group of its own; only Linux can
// also have it killed when the test process dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
