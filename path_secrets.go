package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
)

// secretsRoute begins the patterns of the secrets' paths. Secrets are stored
// under secretStorageKey, which does not follow a rename of the route.
const secretsRoute = "secrets/"

// A secret is stored as two JSON documents, one after the other: its metadata,
// then its data. A write needs only the metadata of the version it replaces
// and so never decodes a value that may be a megabyte.
type secretMetadata struct {
	// Format is the layout the secret is stored in: secretFormat when this
	// release wrote it, 0 when v0.1.0 did.
	Format  int   `json:"format,omitempty"`
	Version int64 `json:"version"`
	// Times are kept as the RFC 3339 strings the API returns.
	CreatedTime string `json:"created_time"`
	UpdatedTime string `json:"updated_time"`
}

// secretFormat is the layout in which this release stores a secret, marked
// in the first document of every entry it writes. v0.1.0 wrote no marker: its
// entries are format 1, the same two documents, and are read as they are. A
// release that changes the layout raises the number and keeps the marker in
// a JSON object on the entry's first line, so that older releases refuse
// what they cannot read.
const secretFormat = 2

type secretEntry struct {
	secretMetadata
	Data map[string]string
}

func (m *secretMetadata) responseData() map[string]any {
	return map[string]any{
		"version":      m.Version,
		"created_time": m.CreatedTime,
		"updated_time": m.UpdatedTime,
	}
}

func encodeSecret(meta *secretMetadata, encodedData []byte) ([]byte, error) {
	value, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	value = append(value, '\n')
	return append(value, encodedData...), nil
}

// decodeSecret decodes the metadata and, if withData, the data of a stored
// secret. json.Marshal never writes a raw newline, so the first one ends the
// metadata.
func decodeSecret(value []byte, withData bool) (*secretEntry, error) {
	first, data, found := bytes.Cut(value, []byte{'\n'})
	var entry secretEntry
	err := json.Unmarshal(first, &entry.secretMetadata)
	// Checked before err: Unmarshal fills every field it can before it
	// reports one of the wrong type, and a newer layout may change any other.
	// Refused rather than guessed at: an operator who rolled the plugin back
	// must see why.
	if entry.Format > secretFormat {
		return nil, fmt.Errorf("secret written by a newer release of the plugin (storage format %d; this release reads up to %d): upgrade the plugin",
			entry.Format, secretFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding secret metadata: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("decoding secret: no data")
	}
	if withData {
		if err := json.Unmarshal(data, &entry.Data); err != nil {
			return nil, fmt.Errorf("decoding secret data: %w", err)
		}
	}
	return &entry, nil
}

func (b *backend) pathSecrets() *framework.Path {
	return &framework.Path{
		// A name ending in "/" is a folder and routes to pathSecretsList instead.
		Pattern: `(?s)` + secretsRoute + `(?P<name>.*[^/])`,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
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
		Pattern: `(?s)` + secretsRoute + `(?P<prefix>.*/)?`,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
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

// secretName is the name of the secret a path routed to pathSecrets names:
// all that follows the route, as its pattern captures it.
func secretName(path string) string {
	return path[len(secretsRoute):]
}

// getSecret reads a secret; it returns nil, not an error, when there is none.
func getSecret(ctx context.Context, s logical.Storage, key string, withData bool) (*secretEntry, error) {
	stored, err := s.Get(ctx, key)
	if err != nil || stored == nil {
		return nil, err
	}
	return decodeSecret(stored.Value, withData)
}

// secretExistenceCheck is the path's declared check, which the framework requires
// of a path that can create; Vault's calls reach secretExists directly through
// HandleExistenceCheck.
func (b *backend) secretExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	return b.secretExists(ctx, req.Storage, capturedName(d, "name"))
}

func (b *backend) secretRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := capturedName(d, "name")
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	entry, err := getSecret(ctx, req.Storage, secretStorageKey(name), true)
	if err != nil {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	// Data only, never a logical.Secret: Vault would register a lease for each
	// read, one more storage write per request.
	data := entry.responseData()
	data["data"] = entry.Data
	return &logical.Response{Data: data}, nil
}

func (b *backend) secretWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := capturedName(d, "name")
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	data, resp := parseSecretData(req.Data["data"])
	if resp != nil {
		return resp, nil
	}
	cas, hasCAS, resp := parseCAS(req.Data)
	if resp != nil {
		return resp, nil
	}
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg.CASRequired && !hasCAS {
		return logical.ErrorResponse("cas: required, because this mount's config sets cas_required"), nil
	}
	encodedData, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding data: %w", err)
	}
	if len(encodedData) > cfg.MaxSecretBytes {
		return logical.ErrorResponse("data: encoded size %d bytes exceeds max_secret_bytes %d", len(encodedData), cfg.MaxSecretBytes), nil
	}

	lock := locksutil.LockForKey(b.secretLocks, name)
	lock.Lock()
	defer lock.Unlock()

	current, err := b.lockedMetadata(ctx, req.Storage, name)
	if err != nil {
		return nil, err
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
	now := time.Now().UTC().Format(time.RFC3339Nano)
	meta := secretMetadata{Format: secretFormat, Version: 1, CreatedTime: now, UpdatedTime: now}
	if current != nil {
		meta.Version, meta.CreatedTime = current.Version+1, current.CreatedTime
	}
	if hasCAS && cas != meta.Version-1 {
		if current == nil {
			return logical.ErrorResponse("cas: %d does not match: the secret does not exist (use cas=0 to create it)", cas), nil
		}
		return logical.ErrorResponse("cas: %d does not match: current version is %d", cas, current.Version), nil
	}

	value, err := encodeSecret(&meta, encodedData)
	if err != nil {
		return nil, fmt.Errorf("encoding secret: %w", err)
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: secretStorageKey(name), Value: value}); err != nil {
		// A failed Put may still have landed: only storage knows the version now.
		b.metadata.Remove(name)
		// Storage's own entry limit (raft: 1 MiB with the encryption overhead
		// included) can be lower than max_secret_bytes allows.
		if strings.Contains(err.Error(), physical.ErrValueTooLarge) {
			return logical.ErrorResponse("data: too large for this Vault's storage; store less or lower max_secret_bytes"), nil
		}
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	b.metadata.Add(name, &meta)
	if logger := b.Logger(); logger.IsDebug() { // the arguments cost allocations even when unused
		logger.Debug("secret written", "name", name, "version", meta.Version)
	}
	return &logical.Response{Data: meta.responseData()}, nil
}

func (b *backend) secretDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := capturedName(d, "name")
	if resp := validateName("name", name); resp != nil {
		return resp, nil
	}
	// The lock keeps a delete from landing between a writer's read and its put.
	lock := locksutil.LockForKey(b.secretLocks, name)
	lock.Lock()
	defer lock.Unlock()
	// A newer release may keep a secret in a form whose extent this one cannot
	// tell: delete only what can be read. The cache usually knows already.
	if _, err := b.lockedMetadata(ctx, req.Storage, name); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, secretStorageKey(name)); err != nil {
		b.metadata.Remove(name) // the delete may still have landed
		return nil, fmt.Errorf("deleting secret: %w", err)
	}
	b.metadata.Add(name, nil)
	if logger := b.Logger(); logger.IsDebug() {
		logger.Debug("secret deleted", "name", name)
	}
	return nil, nil
}

func (b *backend) secretList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := capturedName(d, "prefix")
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
