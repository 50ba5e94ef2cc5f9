package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vault-reference/vault-plugin-secrets-reference/apicases"
	"github.com/vault-reference/vault-plugin-secrets-reference/e2e/harness/cluster"
)

// The plugin's own OpenAPI document (mount/?help=1; the server's
// sys/internal/specs/openapi drops an external plugin's schemas) holds a
// schema for each answer. Every answer of the API's cases through a server
// is checked against it, so that a field the code returns but the document
// lacks fails a named case.

// openAPI is the part of an OpenAPI document the check reads.
type openAPI struct {
	Paths      map[string]openAPIPath `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

// openAPIPath is one path's operations; the list operation is its get.
type openAPIPath struct {
	Get    *openAPIOperation `json:"get"`
	Post   *openAPIOperation `json:"post"`
	Delete *openAPIOperation `json:"delete"`
}

type openAPIOperation struct {
	Responses map[string]struct {
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type openAPISchema struct {
	Ref        string                   `json:"$ref"`
	Type       string                   `json:"type"`
	Properties map[string]openAPISchema `json:"properties"`
}

// pluginOpenAPI fetches the document of the plugin mounted at mount.
func pluginOpenAPI(t *testing.T, mount string) *openAPI {
	t.Helper()
	r := cluster.Must(t, dev, http.StatusOK, "GET", mount+"/?help=1", nil)
	var help struct {
		OpenAPI *openAPI `json:"openapi"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &help); err != nil || help.OpenAPI == nil || len(help.OpenAPI.Paths) == 0 {
		t.Fatalf("%s/?help=1 answered %s (%v), want an OpenAPI document with paths", mount, r, err)
	}
	return help.OpenAPI
}

// undocumented lists what answer holds that the document's schema for
// method on path (relative to the mount) lacks: a field it does not name,
// or one of another JSON type; nil when the answer conforms.
func (doc *openAPI) undocumented(method, path string, answer apicases.Answer) []string {
	if answer.Status >= 300 || len(answer.Data) == 0 {
		return nil // errors are the server's envelope, not the path's schema
	}
	route, op := doc.operation(method, path)
	if route == "" {
		return []string{fmt.Sprintf("no path of the document matches %s", path)}
	}
	response, ok := op.Responses[fmt.Sprint(answer.Status)]
	schema := response.Content["application/json"].Schema
	if !ok || schema.Ref == "" && schema.Properties == nil {
		return []string{fmt.Sprintf("%s %s documents no body for status %d, but the answer has %v", method, route, answer.Status, keys(answer.Data))}
	}
	if name, isRef := strings.CutPrefix(schema.Ref, "#/components/schemas/"); isRef {
		schema = doc.Components.Schemas[name]
	}
	var problems []string
	for _, field := range keys(answer.Data) {
		declared, ok := schema.Properties[field]
		switch got := jsonType(answer.Data[field]); {
		case !ok:
			problems = append(problems, fmt.Sprintf("field %q is not in the schema of %s %s (it has %v)", field, method, route, keys(schema.Properties)))
		case declared.Type != "" && got != declared.Type && got != "null" && !(got == "integer" && declared.Type == "number"):
			problems = append(problems, fmt.Sprintf("field %q is a JSON %s, the schema of %s %s says %s", field, got, method, route, declared.Type))
		}
	}
	return problems
}

// operation finds the document's path and operation for a request: the
// most specific template that matches, with {param} taking what is left.
func (doc *openAPI) operation(method, path string) (string, openAPIOperation) {
	path, _, _ = strings.Cut(path, "?")
	operation := func(p openAPIPath) *openAPIOperation {
		switch method {
		case "GET", "LIST":
			return p.Get
		case "POST", "PUT":
			return p.Post
		case "DELETE":
			return p.Delete
		}
		return nil
	}
	var routes []string
	for route := range doc.Paths {
		routes = append(routes, route)
	}
	// Literal text first, so that "/secrets/" wins over "/secrets/{name}".
	sort.Slice(routes, func(i, j int) bool {
		return len(templateParam.ReplaceAllString(routes[i], "")) > len(templateParam.ReplaceAllString(routes[j], ""))
	})
	for _, route := range routes {
		pattern := "^" + templateParam.ReplaceAllString(regexp.QuoteMeta(route), ".+") + "$"
		if op := operation(doc.Paths[route]); op != nil && regexp.MustCompile(pattern).MatchString("/"+path) {
			return route, *op
		}
	}
	return "", openAPIOperation{}
}

// templateParam is a {param} of a path template, quoted or not.
var templateParam = regexp.MustCompile(`\\?\{[^}/]+\\?\}`)

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	}
	return "object"
}

func keys[V any](m map[string]V) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}
