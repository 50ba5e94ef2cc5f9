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
)

// TestAgent_TemplateRendersAndFollowsWrites runs Vault Agent, the way
// applications get static secrets: auto-auth from a token file, a template
// that reads a secret of the plugin, re-rendered on a short interval.
func TestAgent_TemplateRendersAndFollowsWrites(t *testing.T) {
	dev.enable(t, "agent", oldVersion)
	dev.expect(t, http.StatusOK, "POST", "agent/secrets/app", secretBody("username", "app", "password", "first-password"))

	// The agent's token may read this one secret and, with the default
	// policy, look itself up, which auto-auth does.
	dev.expect(t, http.StatusNoContent, "PUT", "sys/policies/acl/agent-app", map[string]interface{}{
		"policy": `path "agent/secrets/app" { capabilities = ["read"] }`,
	})
	t.Cleanup(func() { dev.call(t, dev.token, "DELETE", "sys/policies/acl/agent-app", nil) })
	token := dev.expect(t, http.StatusOK, "POST", "auth/token/create", map[string]interface{}{
		"policies": []string{"agent-app"}, "ttl": "10m",
	}).body["auth"].(map[string]interface{})["client_token"].(string)

	dir := t.TempDir()
	tokenFile, rendered, config := filepath.Join(dir, "token"), filepath.Join(dir, "password.txt"), filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
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
`, dev.addr, tokenFile, interval, rendered)
	if err := os.WriteFile(config, []byte(agentConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	agent := exec.Command(vaultBinary, "agent", "-config="+config)
	log := &lockedBuffer{}
	agent.Stdout, agent.Stderr = log, log
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = agent.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	waitForFile := func(want string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		waitFor(t, within, fmt.Sprintf("the rendered file to hold %q", want), func() (bool, string) {
			select {
			case <-exited:
				t.Fatalf("vault agent exited:\n%s", log.String())
			default:
			}
			got, _ := os.ReadFile(rendered)
			return string(got) == want, fmt.Sprintf("%q; agent log:\n%s", got, log.String())
		})
		return time.Since(start)
	}
	first := waitForFile("first-password", 30*time.Second)
	t.Logf("agent started and rendered the secret in %s", first.Round(time.Millisecond))

	dev.expect(t, http.StatusOK, "POST", "agent/secrets/app", secretBody("username", "app", "password", "second-password"))
	// A secret without a lease is read again every interval.
	changed := waitForFile("second-password", 3*interval+2*time.Second)
	t.Logf("the rendered file followed a new write in %s (static_secret_render_interval %s)", changed.Round(time.Millisecond), interval)
}
