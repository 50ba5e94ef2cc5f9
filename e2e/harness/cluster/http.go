package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every test speaks to Vault through this one family: send and its variants
// return what a client program sees, so a test can judge any answer, from
// any goroutine; must fails the test unless Vault answered as expected.

// Endpoint is a Vault server a test speaks to as root: the dev server, a
// server of the test's own, or one node of a cluster.
type Endpoint interface {
	Addr() string
	RootToken() string
	// String names it in a failure: a node's id, or a server's address.
	String() string
}

// Reply is a raw HTTP answer from Vault.
type Reply struct {
	Status int
	Body   map[string]any
	Raw    string
}

// Data is the response's Data, where Vault puts a secret's fields and version.
func (r Reply) Data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Status, r.Raw) }

// APIHTTP bounds every request, so a test never waits on a server forever.
// It follows a standby's 307 to the active node, with the body: a
// bytes.Reader lets it send the body again.
var APIHTTP = &http.Client{Timeout: 20 * time.Second}

// HealthHTTP asks sys/health with a short deadline: a paused or dying node
// must not hold up the search for the active one.
var HealthHTTP = &http.Client{Timeout: 2 * time.Second}

// Send is one API request as a client program makes it: an error is what the
// client sees when it gets no answer (connection refused, EOF). It never
// fails the test, so it is the one to use from another goroutine.
func Send(addr, token, method, path string, body any) (Reply, error) {
	return SendWith(APIHTTP, addr, token, method, path, body)
}

// SendWith is send through a client of the caller's: a shorter deadline, or
// one that notes redirects.
func SendWith(client *http.Client, addr, token, method, path string, body any) (Reply, error) {
	return SendContext(context.Background(), client, addr, token, method, path, body)
}

// SendContext is send with a client and a context of the caller's.
func SendContext(ctx context.Context, client *http.Client, addr, token, method, path string, body any) (Reply, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return Reply{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, addr+"/v1/"+path, reader)
	if err != nil {
		return Reply{}, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Reply{Raw: err.Error()}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{Raw: err.Error()}, err
	}
	r := Reply{Status: resp.StatusCode, Raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			return r, fmt.Errorf("decoding %q: %w", raw, err)
		}
	}
	return r, nil
}

// Must sends a request to at as root and fails the test unless the status is
// want and Vault's errors mention every fragment: a test states the answer it
// expects in one line. Only from the test's own goroutine; elsewhere, send.
func Must(t testing.TB, at Endpoint, want int, method, path string, body any, fragments ...string) Reply {
	t.Helper()
	r, err := Send(at.Addr(), at.RootToken(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s on %s: %v, want %d", method, path, at, err, want)
	}
	if r.Status != want {
		t.Fatalf("%s %s on %s: got %s, want %d", method, path, at, r, want)
	}
	errors := fmt.Sprint(r.Body["errors"])
	for _, f := range fragments {
		if !strings.Contains(errors, f) {
			t.Fatalf("%s %s on %s: got %s, want errors that mention %q", method, path, at, r, f)
		}
	}
	return r
}
