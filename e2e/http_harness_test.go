package e2e

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

// endpoint is a Vault server a test speaks to as root: the dev server, a
// server of the test's own, or one node of a cluster.
type endpoint interface {
	addr() string
	rootToken() string
	// String names it in a failure: a node's id, or a server's address.
	String() string
}

// reply is a raw HTTP answer from Vault.
type reply struct {
	status int
	body   map[string]interface{}
	raw    string
}

// data is the response's data, where Vault puts a secret's fields and version.
func (r reply) data() map[string]interface{} {
	d, _ := r.body["data"].(map[string]interface{})
	return d
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// apiHTTP bounds every request, so a test never waits on a server forever.
// It follows a standby's 307 to the active node, with the body: a
// bytes.Reader lets it send the body again.
var apiHTTP = &http.Client{Timeout: 20 * time.Second}

// healthHTTP asks sys/health with a short deadline: a paused or dying node
// must not hold up the search for the active one.
var healthHTTP = &http.Client{Timeout: 2 * time.Second}

// send is one API request as a client program makes it: an error is what the
// client sees when it gets no answer (connection refused, EOF). It never
// fails the test, so it is the one to use from another goroutine.
func send(addr, token, method, path string, body interface{}) (reply, error) {
	return sendWith(apiHTTP, addr, token, method, path, body)
}

// sendWith is send through a client of the caller's: a shorter deadline, or
// one that notes redirects.
func sendWith(client *http.Client, addr, token, method, path string, body interface{}) (reply, error) {
	return sendContext(context.Background(), client, addr, token, method, path, body)
}

// sendContext is send with a client and a context of the caller's.
func sendContext(ctx context.Context, client *http.Client, addr, token, method, path string, body interface{}) (reply, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, addr+"/v1/"+path, reader)
	if err != nil {
		return reply{}, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{raw: err.Error()}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{raw: err.Error()}, err
	}
	r := reply{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("decoding %q: %w", raw, err)
		}
	}
	return r, nil
}

// must sends a request to at as root and fails the test unless the status is
// want and Vault's errors mention every fragment: a test states the answer it
// expects in one line. Only from the test's own goroutine; elsewhere, send.
func must(t testing.TB, at endpoint, want int, method, path string, body interface{}, fragments ...string) reply {
	t.Helper()
	r, err := send(at.addr(), at.rootToken(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s on %s: %v, want %d", method, path, at, err, want)
	}
	if r.status != want {
		t.Fatalf("%s %s on %s: got %s, want %d", method, path, at, r, want)
	}
	errors := fmt.Sprint(r.body["errors"])
	for _, f := range fragments {
		if !strings.Contains(errors, f) {
			t.Fatalf("%s %s on %s: got %s, want errors that mention %q", method, path, at, r, f)
		}
	}
	return r
}

// secretBody is the body of a secret write: pairs of key and value under data.
func secretBody(pairs ...string) map[string]interface{} {
	data := map[string]interface{}{}
	for i := 0; i < len(pairs); i += 2 {
		data[pairs[i]] = pairs[i+1]
	}
	return map[string]interface{}{"data": data}
}
