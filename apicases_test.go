package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
)

// TestAPICases_InProcess runs every case of the API's table against a backend
// of its own, through the request path of newTestEnv: the same gRPC
// translation and HTTP status Vault applies. The e2e tests run the same
// table through real servers.
func TestAPICases_InProcess(t *testing.T) {
	apicases.Run(t, func(t *testing.T) apicases.Client { return inProcessClient{newTestEnv(t)} }, apicases.All())
}

type inProcessClient struct{ e *testEnv }

func (inProcessClient) Server() apicases.Server { return apicases.InProcess }

func (c inProcessClient) Do(method, path string, body map[string]any) (apicases.Answer, error) {
	path, query, _ := strings.Cut(path, "?")
	var op logical.Operation
	switch {
	case method == "GET" && query == "list=true", method == "LIST" && query == "":
		op = logical.ListOperation
	case method == "GET" && query == "":
		op = logical.ReadOperation
	case (method == "POST" || method == "PUT") && query == "":
		op = logical.UpdateOperation // request tells create from update, as Vault does
	case method == "DELETE" && query == "":
		op = logical.DeleteOperation
	default:
		return apicases.Answer{}, fmt.Errorf("no operation for %s with query %q", method, query)
	}
	r := c.e.request(op, path, body)
	answer := apicases.Answer{Status: r.status}
	if text := r.errorText(); text != "" {
		answer.Errors = []string{text}
	}
	if r.resp != nil {
		answer.Warnings = r.resp.Warnings
		if !r.resp.IsError() && r.resp.Data != nil {
			// As a client decodes it from the HTTP body.
			encoded, err := json.Marshal(r.resp.Data)
			if err != nil {
				return answer, err
			}
			if err := json.Unmarshal(encoded, &answer.Data); err != nil {
				return answer, err
			}
		}
	}
	return answer, nil
}
