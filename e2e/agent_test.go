package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// TestAgent_TemplateRendersAndFollowsWrites runs Vault Agent, the way
// applications get static secrets: auto-auth from a token file, a template
// that reads a secret of the plugin, re-rendered on a short interval.
func TestAgent_TemplateRendersAndFollowsWrites(t *testing.T) {
	enable(t, dev, "agent", oldVersion)
	cluster.Must(t, dev, http.StatusOK, "POST", "agent/secrets/app", apicases.KV("username", "app", "password", "first-password"))
	const interval = time.Second
	agent := startAgent(t, agentToken(t), interval)
	first := agent.waitRendered(t, "first-password", 30*time.Second)
	t.Logf("agent started and rendered the secret in %s", first.Round(time.Millisecond))

	cluster.Must(t, dev, http.StatusOK, "POST", "agent/secrets/app", apicases.KV("username", "app", "password", "second-password"))
	// A secret without a lease is read again every interval.
	changed := agent.waitRendered(t, "second-password", 3*interval+2*time.Second)
	t.Logf("the rendered file followed a new write in %s (static_secret_render_interval %s)", changed.Round(time.Millisecond), interval)
}

// agentToken makes the agent's token: it may read this one secret and, with
// the default policy, look itself up, which auto-auth does.
func agentToken(t *testing.T) string {
	t.Helper()
	cluster.Must(t, dev, http.StatusNoContent, "PUT", "sys/policies/acl/agent-app", map[string]any{
		"policy": `path "agent/secrets/app" { capabilities = ["read"] }`,
	})
	t.Cleanup(func() { cluster.Send(dev.Addr(), dev.Token, "DELETE", "sys/policies/acl/agent-app", nil) })
	return cluster.Must(t, dev, http.StatusOK, "POST", "auth/token/create", map[string]any{
		"policies": []string{"agent-app"}, "ttl": "10m",
	}).Body["auth"].(map[string]any)["client_token"].(string)
}

// agent is a running Vault Agent and the file its template renders.
type agent struct {
	rendered string
	log      *cluster.LockedBuffer
	exited   chan struct{}
}

// startAgent starts Vault Agent with token in a token file and a template
// of agent/secrets/app's password, rendered every interval; it is stopped
// when the test ends.
func startAgent(t *testing.T, token string, interval time.Duration) *agent {
	t.Helper()
	dir := t.TempDir()
	tokenFile, config := filepath.Join(dir, "token"), filepath.Join(dir, "agent.hcl")
	a := &agent{rendered: filepath.Join(dir, "password.txt"), log: &cluster.LockedBuffer{}, exited: make(chan struct{})}
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	agentConfig := fmt.Sprintf(`
vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template_config {
  static_secret_render_interval = "%s"
}
template {
  contents    = "{{ with secret \"agent/secrets/app\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
`, dev.Addr(), tokenFile, interval, a.rendered)
	if err := os.WriteFile(config, []byte(agentConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(cluster.Binary, "agent", "-config="+config)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
	})
	return a
}

// waitRendered waits until the rendered file holds want, and returns how
// long that took; an agent that exits fails the test at once.
func (a *agent) waitRendered(t *testing.T, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	cluster.WaitFor(t, within, fmt.Sprintf("the rendered file to hold %q", want), func() (bool, string) {
		select {
		case <-a.exited:
			t.Fatalf("vault agent exited, want it to render %q:\n%s", want, a.log.String())
		default:
		}
		got, _ := os.ReadFile(a.rendered)
		return string(got) == want, fmt.Sprintf("%q; agent log:\n%s", got, a.log.String())
	})
	return time.Since(start)
}
