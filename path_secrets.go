package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
)

const (
	secretStoragePrefix = "secrets/"
	maxNameBytes        = 512
)

// secretEntry is one secret as stored under secretStoragePrefix + name.
type secretEntry struct {
	Data        map[string]string `json:"data"`
	Version     int64             `json:"version"`
	CreatedTime time.Time         `json:"created_time"`
	UpdatedTime time.Time         `json:"updated_time"`
}

func (e *secretEntry) metadata() map[string]interface{} {
	return map[string]interface{}{
		"version":      e.Version,
		"created_time": e.CreatedTime.Format(time.RFC3339Nano),
		"updated_time": e.UpdatedTime.Format(time.RFC3339Nano),
	}
}

func (b *backend) pathSecrets() *framework.Path {
	return &framework.Path{
		// A name ending in "/" is a folder and routes to pathSecretsList instead.
		Pattern: `(?s)` + secretStoragePrefix + `(?P<name>.*[^/])`,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "reference",
			OperationSuffix: "secret",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the secret: segments joined by '/', at most 512 bytes.",
				Required:    true,
			},
			"data": {
				Type:        framework.TypeKVPairs,
				Description: `Key/value pairs to store, all strings: a JSON object, or KEY=VALUE pairs from the CLI.`,
				Required:    true,
			},
			"cas": {
				Type:        framework.TypeInt,
				Description: "Check-and-set: 0 writes only if the secret does not exist; N > 0 only if its current version is N.",
			},
		},
		ExistenceCheck: b.secretExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.secretRead,
				Summary:  "Read a secret.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: secretReadResponseFields}},
				},
			},
			logical.CreateOperation: b.secretWriteOperation("Create a secret."),
			logical.UpdateOperation: b.secretWriteOperation("Write a new version of a secret."),
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.secretDelete,
				Summary:                     "Delete a secret and all it held.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses: map[int][]framework.Response{
					http.StatusNoContent: {{Description: "No Content"}},
				},
			},
		},
		HelpSynopsis:    secretHelpSynopsis,
		HelpDescription: secretHelpDescription,
	}
}

func (b *backend) secretWriteOperation(summary string) *framework.PathOperation {
	return &framework.PathOperation{
		Callback:                    b.secretWrite,
		Summary:                     summary,
		ForwardPerformanceStandby:   true,
		ForwardPerformanceSecondary: true,
		Responses: map[int][]framework.Response{
			http.StatusOK: {{Description: "OK", Fields: secretMetadataFields}},
		},
	}
}

func (b *backend) pathSecretsList() *framework.Path {
	return &framework.Path{
		Pattern: `(?s)` + secretStoragePrefix + `(?P<prefix>.*/)?`,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "reference",
			OperationSuffix: "secrets",
		},
		Fields: map[string]*framework.FieldSchema{
			"prefix": {
				Type:        framework.TypeString,
				Description: "Folder to list, ending in '/'; empty for the top level.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{
				Callback: b.secretList,
				Summary:  "List the secrets and folders in a folder.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
						"keys": {
							Type:        framework.TypeStringSlice,
							Description: "Sorted names; one ending in '/' is a folder.",
							Required:    true,
						},
					}}},
				},
			},
		},
		HelpSynopsis:    secretListHelpSynopsis,
		HelpDescription: secretListHelpDescription,
	}
}

var secretMetadataFields = map[string]*framework.FieldSchema{
	"version": {
		Type:        framework.TypeInt64,
		Description: "Version of the secret, 1 on creation and one more with each write.",
		Required:    true,
	},
	"created_time": {
		Type:        framework.TypeTime,
		Description: "When the secret was created (RFC 3339, UTC).",
		Required:    true,
	},
	"updated_time": {
		Type:        framework.TypeTime,
		Description: "When this version was written (RFC 3339, UTC).",
		Required:    true,
	},
}

var secretReadResponseFields = func() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"data": {
			Type:        framework.TypeKVPairs,
			Description: "The secret's key/value pairs.",
			Required:    true,
		},
	}
	for k, v := range secretMetadataFields {
		fields[k] = v
	}
	return fields
}()

// validateName enforces the name rules of the API. Vault cleans "." and ".." out
// of URLs, but percent-encoded forms reach the plugin, and Vault's storage
// refuses any key containing "..".
func validateName(field, name string) *logical.Response {
	var broken string
	switch {
	case name == "":
		broken = "must not be empty"
	case len(name) > maxNameBytes:
		broken = fmt.Sprintf("must be at most %d bytes", maxNameBytes)
	case strings.Contains(name, ".."):
		broken = `must not contain ".."`
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		broken = "must not have an empty segment"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		broken = "must not contain control characters"
	default:
		return nil
	}
	return logical.ErrorResponse("%s: %s", field, broken)
}

// parseSecretData accepts the forms Vault sends for a key/value field: a JSON
// object, one "KEY=VALUE" string, or a list of them. It checks the raw values
// because the framework's TypeKVPairs would silently turn 5432 into "5432".
// Messages name keys and JSON types, never a value.
func parseSecretData(raw interface{}) (map[string]string, *logical.Response) {
	var data map[string]string
	switch v := raw.(type) {
	case map[string]interface{}:
		data = make(map[string]string, len(v))
		for key, value := range v {
			s, ok := value.(string)
			if !ok {
				return nil, logical.ErrorResponse("data: value of key %q must be a string, not %s", key, jsonType(value))
			}
			data[key] = s
		}
	case string:
		return parseSecretData([]interface{}{v})
	case []interface{}:
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

// malformedSecretData answers a secret write whose data parseSecretData rejects.
// It runs before the framework sees the request (see HandleRequest).
func malformedSecretData(req *logical.Request) *logical.Response {
	isWrite := req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation
	if !isWrite || !strings.HasPrefix(req.Path, secretStoragePrefix) || strings.HasSuffix(req.Path, "/") {
		return nil
	}
	_, resp := parseSecretData(req.Data["data"])
	return resp
}

// jsonType names the JSON type of a decoded value, for error messages that must
// not echo the value itself.
func jsonType(v interface{}) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case map[string]interface{}:
		return "an object"
	case []interface{}:
		return "an array"
	default:
		return "a number"
	}
}

func secretStorageKey(name string) string {
	return secretStoragePrefix + name
}

func (b *backend) getSecret(ctx context.Context, s logical.Storage, name string) (*secretEntry, error) {
	var entry secretEntry
	found, err := getJSON(ctx, s, secretStorageKey(name), &entry)
	if err != nil || !found {
		return nil, err
	}
	return &entry, nil
}

// secretExistenceCheck tells Vault whether a write creates or updates, so a
// policy can grant "create" without "update".
func (b *backend) secretExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name := d.Get("name").(string)
	if validateName("name", name) != nil {
		// The handler answers with the 400; storage would refuse such a key with a 500.
		return false, nil
	}
	entry, err := req.Storage.Get(ctx, secretStorageKey(name))
	if err != nil {
		return false, fmt.Errorf("reading secret: %w", err)
	}
	return entry != nil, nil
}

func (b *backend) secretRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	entry, err := b.getSecret(ctx, req.Storage, name)
	if err != nil {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	// Data only, never a logical.Secret: Vault would register a lease for each
	// read, one more storage write per request.
	data := entry.metadata()
	data["data"] = entry.Data
	return &logical.Response{Data: data}, nil
}

func (b *backend) secretWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	data, resp := parseSecretData(req.Data["data"])
	if resp != nil {
		return resp, nil
	}
	rawCAS, hasCAS := req.Data["cas"]
	cas, ok := wholeNumber(rawCAS)
	if hasCAS && (!ok || cas < 0) {
		return logical.ErrorResponse("cas: must be a whole number of at least 0"), nil
	}
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg.CASRequired && !hasCAS {
		return logical.ErrorResponse("cas: required, because this mount's config sets cas_required"), nil
	}
	encoded, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding data: %w", err)
	}
	if len(encoded) > cfg.MaxSecretBytes {
		return logical.ErrorResponse("data: encoded size %d bytes exceeds max_secret_bytes %d", len(encoded), cfg.MaxSecretBytes), nil
	}

	lock := locksutil.LockForKey(b.secretLocks, name)
	lock.Lock()
	defer lock.Unlock()

	current, err := b.getSecret(ctx, req.Storage, name)
	if err != nil {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	var currentVersion int64
	if current != nil {
		currentVersion = current.Version
	}
	// Vault chose create or update, and checked the policy for it, before this
	// lock was taken; a concurrent write or delete may have changed the answer
	// since. Honour the checked capability: create never overwrites.
	if req.Operation == logical.CreateOperation && current != nil {
		return logical.ErrorResponse("name: secret was created by another request since this write began; retry"), nil
	}
	if req.Operation == logical.UpdateOperation && current == nil {
		return logical.ErrorResponse("name: secret was deleted by another request since this write began; retry"), nil
	}
	if hasCAS && cas != currentVersion {
		if current == nil {
			return logical.ErrorResponse("cas: %d does not match: the secret does not exist (use cas=0 to create it)", cas), nil
		}
		return logical.ErrorResponse("cas: %d does not match: current version is %d", cas, currentVersion), nil
	}

	now := time.Now().UTC()
	entry := &secretEntry{Data: data, Version: currentVersion + 1, CreatedTime: now, UpdatedTime: now}
	if current != nil {
		entry.CreatedTime = current.CreatedTime
	}
	if err := putJSON(ctx, req.Storage, secretStorageKey(name), entry); err != nil {
		// Storage's own entry limit (raft: 1 MiB with the encryption overhead
		// included) can be lower than max_secret_bytes allows.
		if strings.Contains(err.Error(), physical.ErrValueTooLarge) {
			return logical.ErrorResponse("data: too large for this Vault's storage; store less or lower max_secret_bytes"), nil
		}
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	b.Logger().Debug("secret written", "name", name, "version", entry.Version)
	return &logical.Response{Data: entry.metadata()}, nil
}

func (b *backend) secretDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	// The lock keeps a delete from landing between a writer's read and its put.
	lock := locksutil.LockForKey(b.secretLocks, name)
	lock.Lock()
	defer lock.Unlock()
	if err := req.Storage.Delete(ctx, secretStorageKey(name)); err != nil {
		return nil, fmt.Errorf("deleting secret: %w", err)
	}
	b.Logger().Debug("secret deleted", "name", name)
	return nil, nil
}

func (b *backend) secretList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := d.Get("prefix").(string)
	if prefix != "" {
		if resp := validateName("prefix", strings.TrimSuffix(prefix, "/")); resp != nil {
			return resp, nil
		}
	}
	keys, err := req.Storage.List(ctx, secretStorageKey(prefix))
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	sort.Strings(keys)
	return logical.ListResponse(keys), nil
}

const secretHelpSynopsis = "Read, write and delete one secret."

const secretHelpDescription = `
A secret is a set of string key/value pairs under a name made of segments
joined by '/' ("app", "team/app/db").

Write stores a new version: "data" holds the pairs, as a JSON object or, from
the CLI, as data=KEY=VALUE arguments. "cas" makes the write conditional: 0
creates only, N updates only from version N. The response carries the new
version and its times.

Read returns the pairs, the version, created_time and updated_time.
Delete removes the secret entirely; a later write starts again at version 1.
`

const secretListHelpSynopsis = "List secrets and folders."

const secretListHelpDescription = `
Lists the names directly in a folder ("secrets/" for the top, or
"secrets/team/" and so on), sorted. A name ending in '/' is a folder.
An empty or missing folder answers 404, as everywhere in Vault.
`
