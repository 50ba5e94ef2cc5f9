package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// maxNameBytes bounds a secret's name, and so its storage key.
const maxNameBytes = 512

// HandleExistenceCheck answers for the config and one secret itself instead
// of the framework, whose check first converts every field and fails on a
// value of the wrong type with a message that quotes it. Vault logs that
// failure, and writes it unhashed to the audit log: for data, a secret.
// HandleRequest then answers the malformed value with a 400 of its own.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	switch b.Route(req.Path) {
	case b.configPath:
		exists, err := configExists(ctx, req.Storage)
		return true, exists, err
	case b.secretPath:
		exists, err := b.secretExists(ctx, req.Storage, secretName(req.Path))
		return true, exists, err
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// HandleRequest answers malformed writes before the framework converts the
// fields. Its conversion errors quote the value (for data, a secret) and speak
// of strconv; the plugin's own messages name the field and its rule, whatever
// form the value came in.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation {
		if resp := b.rejectMalformedWrite(req); resp != nil {
			return resp, nil
		}
	}
	return b.Backend.HandleRequest(ctx, req)
}

// rejectMalformedWrite parses a write's fields as its handler will, and
// answers the first mistake.
func (b *backend) rejectMalformedWrite(req *logical.Request) *logical.Response {
	switch b.Route(req.Path) {
	case b.configPath:
		_, resp := parseConfigUpdate(req.Data)
		return resp
	case b.secretPath:
		if _, resp := parseSecretData(req.Data["data"]); resp != nil {
			return resp
		}
		_, _, resp := parseCAS(req.Data)
		return resp
	}
	return nil
}

// wholeNumber reads an integer field strictly. The framework's TypeInt would
// turn 1.5 into 1 and true into 1. An external plugin receives JSON numbers as
// float64 (so 1.0 is 1), and CLI input as strings of decimal digits.
func wholeNumber(raw any) (int64, bool) {
	switch v := raw.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, false
		}
		return int64(v), true
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	case string:
		// Digits only: ParseInt alone would also take "+5" and "-0".
		if v == "" || strings.Trim(v, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// boolean reads a bool field strictly; the framework's TypeBool would accept 1.
func boolean(raw any) (bool, bool) {
	switch v := raw.(type) {
	case bool:
		return v, true
	case string:
		switch v {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// configUpdate holds the settings a write carries; nil fields keep their values.
type configUpdate struct {
	maxSecretBytes *int
	casRequired    *bool
}

// parseConfigUpdate reads the raw values, because the framework's conversions
// are lenient (see wholeNumber).
func parseConfigUpdate(data map[string]any) (configUpdate, *logical.Response) {
	var update configUpdate
	if raw, ok := data["max_secret_bytes"]; ok {
		n, ok := wholeNumber(raw)
		if !ok || n < 1 || n > maxMaxSecretBytes {
			return update, logical.ErrorResponse("max_secret_bytes: must be a whole number from 1 to %d", maxMaxSecretBytes)
		}
		v := int(n)
		update.maxSecretBytes = &v
	}
	if raw, ok := data["cas_required"]; ok {
		v, ok := boolean(raw)
		if !ok {
			return update, logical.ErrorResponse("cas_required: must be true or false")
		}
		update.casRequired = &v
	}
	return update, nil
}

// capturedName returns a name captured from the request path. Captures are
// always strings, so this skips the generic conversion of d.Get, which costs
// a handful of allocations on every request.
func capturedName(d *framework.FieldData, field string) string {
	name, _ := d.Raw[field].(string)
	return name
}

// validateName enforces the name rules of the API. Vault's HTTP layer cleans
// "." and ".." segments out of URLs, but percent-encoded forms reach the
// plugin: a secret stored under such a name could be written over HTTP yet
// never read or deleted with the CLI. Vault's storage refuses any key
// containing "..".
func validateName(field, name string) *logical.Response {
	var broken string
	switch {
	case name == "":
		broken = "must not be empty"
	case len(name) > maxNameBytes:
		broken = fmt.Sprintf("must be at most %d bytes", maxNameBytes)
	case strings.Contains(name, ".."):
		broken = `must not contain ".."`
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		broken = "must not contain control characters"
	default:
		broken = brokenSegmentRule(name)
	}
	if broken == "" {
		return nil
	}
	return logical.ErrorResponse("%s: %s", field, broken)
}

// brokenSegmentRule checks each '/'-separated segment of name without
// allocating: names are checked on every request.
func brokenSegmentRule(name string) string {
	for rest, more := name, true; more; {
		var segment string
		segment, rest, more = strings.Cut(rest, "/")
		switch segment {
		case "":
			return "must not have an empty segment"
		case ".":
			return `must not have a segment that is exactly "."`
		}
	}
	return ""
}

// parseCAS reads the optional cas field strictly: see wholeNumber.
func parseCAS(data map[string]any) (cas int64, given bool, resp *logical.Response) {
	raw, given := data["cas"]
	if !given {
		return 0, false, nil
	}
	cas, ok := wholeNumber(raw)
	if !ok || cas < 0 {
		return 0, true, logical.ErrorResponse("cas: must be a whole number of at least 0")
	}
	return cas, true, nil
}

// parseSecretData accepts the forms Vault sends for a key/value field: a JSON
// object, one "KEY=VALUE" string, or a list of them. It checks the raw values
// because the framework's TypeKVPairs would silently turn 5432 into "5432".
// Messages name keys and JSON types, never a value.
func parseSecretData(raw any) (map[string]string, *logical.Response) {
	var data map[string]string
	switch v := raw.(type) {
	case map[string]any:
		data = make(map[string]string, len(v))
		for key, value := range v {
			s, ok := value.(string)
			if !ok {
				return nil, logical.ErrorResponse("data: value of key %q must be a string, not %s", key, jsonType(value))
			}
			data[key] = s
		}
	case string:
		return parseSecretData([]any{v})
	case []any:
		data = make(map[string]string, len(v))
		for i, item := range v {
			pair, ok := item.(string)
			key, value, found := strings.Cut(pair, "=")
			if !ok || !found {
				return nil, logical.ErrorResponse("data: item %d must be a KEY=VALUE string", i+1)
			}
			if _, dup := data[key]; dup {
				return nil, logical.ErrorResponse("data: key %q is given more than once", key)
			}
			data[key] = value
		}
	case nil:
		return nil, logical.ErrorResponse("data: required")
	default:
		return nil, logical.ErrorResponse("data: must be an object of strings or KEY=VALUE pairs, not %s", jsonType(raw))
	}
	if len(data) == 0 {
		return nil, logical.ErrorResponse("data: must hold at least one key")
	}
	if _, ok := data[""]; ok {
		return nil, logical.ErrorResponse("data: keys must not be empty")
	}
	return data, nil
}

// jsonType names the JSON type of a decoded value, for error messages that must
// not echo the value itself.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return "a number"
	}
}
