package main

import (
	"net/http"
	"sort"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// rejectUnknownFields answers a field the path does not declare: the
// framework would drop it with a warning, and a misspelt ttl would then
// silently be the default.
func rejectUnknownFields(d *framework.FieldData) *logical.Response {
	var unknown []string
	for name := range d.Raw {
		if _, ok := d.Schema[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return logical.ErrorResponse("unknown field %q: this path takes only the fields its help lists", unknown[0])
}

// withoutField is fields less one, for a response that never carries it.
func withoutField(fields map[string]*framework.FieldSchema, name string) map[string]*framework.FieldSchema {
	out := make(map[string]*framework.FieldSchema, len(fields))
	for k, v := range fields {
		if k != name {
			out[k] = v
		}
	}
	return out
}

// noContentWrite is a write that answers 204, as config and roles do.
func noContentWrite(callback framework.OperationFunc, summary string) *framework.PathOperation {
	return &framework.PathOperation{
		Callback:  callback,
		Summary:   summary,
		Responses: map[int][]framework.Response{http.StatusNoContent: {{Description: "No Content"}}},
	}
}
