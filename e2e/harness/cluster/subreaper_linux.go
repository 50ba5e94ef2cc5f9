//go:build linux

package cluster

import "syscall"

// On Linux the test process becomes the subreaper of the processes it starts:
// the plugin processes of a Vault killed with -9 are re-parented to it rather
// than to PID 1, which in a container may never reap them, and killPluginProcesses
// reaps them once killed. Elsewhere init adopts and reaps them.
func init() {
	BecomeSubreaper = func() error {
		const prSetChildSubreaper = 36
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
			return errno
		}
		return nil
	}
}
