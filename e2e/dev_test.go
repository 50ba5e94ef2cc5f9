package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDev_ScriptServesThePluginAndStopsOnCtrlC runs what `make dev` runs, as a
// new user would: wait for its instructions, paste them, press Ctrl-C.
func TestDev_ScriptServesThePluginAndStopsOnCtrlC(t *testing.T) {
	binary := filepath.Join(t.TempDir(), pluginName)
	if _, err := runCommand(5*time.Minute, "make", "-s", "-C", "..", "build", "BIN="+binary); err != nil {
		t.Fatalf("make build: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command("./dev.sh", binary, oldVersion)
	cmd.Env = append(os.Environ(), "PLUGIN="+pluginName, "MOUNT="+mount, "DEV_ADDR="+listen, "DEV_TOKEN=dev-token", "VAULT_BINARY="+vaultBinary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	var printed strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.Contains(lines.Text(), "Ctrl-C") {
		printed.WriteString(lines.Text() + "\n")
	}
	for _, want := range []string{"export VAULT_ADDR=http://" + listen + " VAULT_TOKEN=dev-token", "vault write " + mount + "/secrets/app", "vault read " + mount + "/secrets/app", "vault list " + mount + "/secrets"} {
		if !strings.Contains(printed.String(), want) {
			t.Fatalf("make dev does not print %q:\n%s", want, printed.String())
		}
	}

	s := &server{addr: "http://" + listen, token: "dev-token"}
	s.mustCLI(t, "write", mount+"/secrets/app", "data=username=app", "data=password=s3cr3t")
	if out := s.mustCLI(t, "read", mount+"/secrets/app"); !strings.Contains(out, "password:s3cr3t") {
		t.Fatalf("vault read:\n%s", out)
	}
	if out := s.mustCLI(t, "plugin", "info", "-version="+oldVersion, "secret", pluginName); !strings.Contains(out, oldVersion) {
		t.Fatalf("plugin info:\n%s", out)
	}

	// Ctrl-C in a terminal signals the whole foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("make dev did not stop on Ctrl-C")
	}
	if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		conn.Close()
		t.Fatal("the dev server still listens after Ctrl-C")
	}
}
