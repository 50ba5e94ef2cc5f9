package redistest

import "syscall"

// procAttr puts redis-server in a process group of its own, and has the
// kernel kill it if the test process dies first: a panic or a kill ends a
// test binary without running the Stop its cleanup would have run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
