package main

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Every path and field says what it is, in path-help and in the OpenAPI
// document an operator and a generated client read.
func TestBackend_EveryPathAndFieldHasHelp(t *testing.T) {
	b := newBackend(time.Minute)
	for _, p := range b.Paths {
		if p.HelpSynopsis == "" || p.HelpDescription == "" {
			t.Errorf("path %s: got synopsis %q and description %q, want both", p.Pattern, p.HelpSynopsis, p.HelpDescription)
		}
		for name, f := range p.Fields {
			if f.Description == "" {
				t.Errorf("path %s, field %s: got no description, want one", p.Pattern, name)
			}
		}
		for op, handler := range p.Operations {
			if handler.Properties().Summary == "" {
				t.Errorf("path %s, %s: got no summary, want one", p.Pattern, op)
			}
		}
	}
	for _, s := range b.Secrets {
		for name, f := range s.Fields {
			if f.Description == "" {
				t.Errorf("secret %s, field %s: got no description, want one", s.Type, name)
			}
		}
	}
	e := newEnv(t, sharedRedis, time.Minute)
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Storage: e.storage})
	if err != nil || resp.Data["openapi"] == nil {
		t.Fatalf("the OpenAPI document: got %v, %v; want one", resp, err)
	}
}

// The release build waits ten minutes before it takes a create for
// abandoned; a build with -X main.walRollbackMinAge set to what is not a
// positive duration refuses to start rather than roll back at once.
func TestFactory_WALRollbackMinAge(t *testing.T) {
	if walRollbackMinAge != "10m" {
		t.Fatalf("walRollbackMinAge: got %q, want the release default 10m", walRollbackMinAge)
	}
	defer func(kept string) { walRollbackMinAge = kept }(walRollbackMinAge)
	for _, bad := range []string{"", "soon", "0s", "-1m"} {
		walRollbackMinAge = bad
		if _, err := Factory(context.Background(), logical.TestBackendConfig()); err == nil {
			t.Errorf("Factory built with walRollbackMinAge %q: got a backend, want an error", bad)
		}
	}
}
