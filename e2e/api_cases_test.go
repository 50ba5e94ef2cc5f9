package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/verdict"
)

// minPluginAge is how long the plugin process must have run before the cases
// start: a bug may show only in a process that has served a while, as in a
// deployment, never in one the test has just started.
const minPluginAge = 6 * time.Second

// apiCaseFailed names, in a verdict for make mutants, a case of the table
// that a server's answers failed.
const apiCaseFailed = "API case failed"

// answerOutsideSchema names, in a verdict, an answer with a field the
// plugin's own OpenAPI document does not give it.
const answerOutsideSchema = "answer outside its schema"

// TestAPICases_ThroughServer runs every case of the API's table, which the
// unit tests run in process, over HTTP against the dev server: each case on
// a mount of its own, all served by one plugin process at least minPluginAge
// old.
func TestAPICases_ThroughServer(t *testing.T) {
	// One process serves every mount of a version; this mount keeps it
	// running while the cases' own mounts come and go.
	const keeper = "cases-keep"
	enable(t, dev, keeper, oldVersion)
	pid := servingProcess(t)
	age := ageAtLeast(t, pid, keeper, minPluginAge)
	t.Logf("plugin process %d is %v old at the first case", pid, age)

	doc := pluginOpenAPI(t, keeper)
	server := apicases.Vault
	if os.Getenv("E2E_SERVER") == "openbao" {
		server = apicases.OpenBao
	}
	started, mounts := time.Now(), 0
	apicases.Run(t, func(t *testing.T) apicases.Client {
		t.Cleanup(func() {
			if t.Failed() {
				verdict.Violation(t, apiCaseFailed, t.Name())
			}
		})
		mounts++
		path := fmt.Sprintf("case-%d", mounts)
		enable(t, dev, path, oldVersion)
		return httpClient{t: t, doc: doc, server: server, mount: path}
	}, apicases.All())

	// A process started again during the run would have served the cases
	// after it younger than minPluginAge.
	if now := servingProcess(t); now != pid {
		t.Fatalf("plugin process %d served the first case, %d serves now, want one process for every case", pid, now)
	}
	age, _, err := processAge(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases in %v; plugin process %d is %v old at the end", mounts, time.Since(started).Round(time.Millisecond), pid, age)
}

// httpClient sends the cases' requests to one mount of the dev server.
// Every answer it gets must conform to the plugin's own OpenAPI document.
type httpClient struct {
	t      *testing.T
	doc    *openAPI
	server apicases.Server
	mount  string
}

func (c httpClient) Server() apicases.Server { return c.server }

func (c httpClient) Do(method, path string, body map[string]any) (apicases.Answer, error) {
	var payload any // a nil map would be sent as the body "null"
	if body != nil {
		payload = body
	}
	r, err := cluster.Send(dev.Addr(), dev.RootToken(), method, c.mount+"/"+apicases.URLPath(path), payload)
	if err != nil {
		return apicases.Answer{}, err
	}
	answer := apicases.Answer{Status: r.Status, Data: r.Data(), Errors: texts(r.Body["errors"]), Warnings: texts(r.Body["warnings"])}
	if problems := c.doc.undocumented(method, path, answer); len(problems) > 0 {
		verdict.Violation(c.t, answerOutsideSchema, problems...)
		c.t.Fatalf("%s %s: %s; want every field the plugin answers in its own OpenAPI document",
			method, path, strings.Join(problems, "; "))
	}
	return answer, nil
}

// texts is a JSON array of strings, as Vault writes errors and warnings.
func texts(raw any) []string {
	items, _ := raw.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, fmt.Sprint(item))
	}
	return out
}

// servingProcess is the PID of the one plugin process of oldVersion that the
// dev server runs.
func servingProcess(t *testing.T) int {
	t.Helper()
	var found []string
	pid := 0
	for _, p := range dev.PluginProcesses(pluginDir) {
		_, args, err := processAge(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(args, pluginCommand(oldVersion)) {
			found, pid = append(found, fmt.Sprintf("%d %s", p, args)), p
		}
	}
	if len(found) != 1 {
		t.Fatalf("plugin processes of %s: %q, want one (one process serves every mount of a version)", oldVersion, found)
	}
	return pid
}

// ageAtLeast keeps the plugin process pid serving requests on mount until it
// is at least want old, and returns its age.
func ageAtLeast(t *testing.T, pid int, mount string, want time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(want + 10*time.Second)
	for i := 0; ; i++ {
		age, _, err := processAge(pid)
		if err != nil {
			t.Fatal(err)
		}
		if age >= want {
			return age
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d is %v old after %v of requests, want %v", pid, age, want+10*time.Second, want)
		}
		name := fmt.Sprintf("%s/secrets/warm-%d", mount, i%10)
		cluster.Must(t, dev, http.StatusOK, "POST", name, map[string]any{"data": map[string]any{"k": strconv.Itoa(i)}})
		cluster.Must(t, dev, http.StatusOK, "GET", name, nil)
		cluster.Must(t, dev, http.StatusOK, "LIST", mount+"/secrets/", nil)
		time.Sleep(100 * time.Millisecond)
	}
}

// processAge is how long the process pid has run, and its command line, as
// POSIX ps reports them: etime is [[dd-]hh:]mm:ss in whole seconds, rounded
// down, so the age is never more than the truth.
func processAge(pid int) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ps", "-o", "etime=", "-o", "args=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, "", fmt.Errorf("ps for process %d: %v", pid, err)
	}
	etime, args, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	age, err := parseETime(etime)
	if err != nil {
		return 0, "", fmt.Errorf("ps for process %d printed %q: %v", pid, out, err)
	}
	return age, strings.TrimSpace(args), nil
}

func parseETime(etime string) (time.Duration, error) {
	var days int
	if d, rest, found := strings.Cut(etime, "-"); found {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		days, etime = n, rest
	}
	parts := strings.Split(etime, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("etime %q: want [[dd-]hh:]mm:ss", etime)
	}
	seconds := days * 24 * 60 * 60
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, err
		}
		seconds += n * []int{1, 60, 60 * 60}[len(parts)-1-i]
	}
	return time.Duration(seconds) * time.Second, nil
}
