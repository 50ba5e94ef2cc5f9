package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestExistenceCheck_CreateVersusUpdate(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	check := func(path string, data map[string]any) bool {
		t.Helper()
		req := &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: e.storage}
		found, exists, err := e.backend.HandleExistenceCheck(ctx, req)
		if err != nil || !found {
			t.Fatalf("existence check on %s: found=%v err=%v, want found=true err=nil", path, found, err)
		}
		return exists
	}
	secret := map[string]any{"data": map[string]any{"k": "v"}}

	if check("secrets/app", secret) || check("config", nil) {
		t.Fatal("existence check: exists=true for paths never written, want false")
	}
	e.mustStatus(e.write("secrets/app", secret), http.StatusOK)
	e.mustStatus(e.write("config", map[string]any{"cas_required": false}), http.StatusNoContent)
	if !check("secrets/app", secret) || !check("config", nil) {
		t.Fatal("existence check: exists=false for stored entries, want true")
	}
	e.mustStatus(e.delete("secrets/app"), http.StatusNoContent)
	e.mustStatus(e.delete("config"), http.StatusNoContent)
	if check("secrets/app", secret) || check("config", nil) {
		t.Fatal("existence check: exists=true for deleted entries, want false")
	}
}

func TestExistenceCheck_MalformedInputIsLeftToTheHandler(t *testing.T) {
	e := newTestEnv(t)
	// The framework's conversion error would quote the value; Vault logs
	// existence-check errors, so the check must not return it.
	data := map[string]any{"data": []any{"password-without-equals-sign"}}
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "secrets/app", Data: data, Storage: e.storage}
	_, exists, err := e.backend.HandleExistenceCheck(context.Background(), req)
	if err != nil || exists {
		t.Fatalf("existence check: exists=%v err=%v, want false, nil", exists, err)
	}
	for _, body := range []map[string]any{data, {"data": map[string]any{"password": []any{"password-in-a-list"}}}} {
		r := e.write("secrets/app", body)
		e.mustStatus(r, http.StatusBadRequest, "data")
		if strings.Contains(r.errorText(), "password-") {
			t.Fatalf("error %q quotes the secret, want one that names the field only", r.errorText())
		}
	}
	if strings.Contains(e.logs.String(), "password-") {
		t.Fatalf("the secret reached a log, want no value logged:\n%s", e.logs.String())
	}
	if e.storedSecret("app") != nil {
		t.Fatalf("a rejected write was stored as %+v, want nothing stored", e.storedSecret("app"))
	}
}

func TestWholeNumber_StrictConversions(t *testing.T) {
	tests := []struct {
		in   any
		want int64
		ok   bool
	}{
		{3, 3, true}, {int64(4), 4, true}, {float64(5), 5, true}, {"6", 6, true},
		{1.5, 0, false}, {true, 0, false}, {"1.5", 0, false}, {"x", 0, false}, {nil, 0, false},
		{float64(1 << 60), 0, false}, {[]any{1}, 0, false},
	}
	for _, tt := range tests {
		got, ok := wholeNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("wholeNumber(%#v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
