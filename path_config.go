package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	// configRoute is the config path's pattern. Its storage entry is under
	// configStorageKey, which does not follow a rename of the route.
	configRoute = "config"

	defaultMaxSecretBytes = 512 << 10
	// maxMaxSecretBytes is integrated storage's default entry limit (1 MiB);
	// a larger secret would be refused by storage, not by us.
	maxMaxSecretBytes = 1 << 20
)

// configEntry is the mount's settings as stored under configStorageKey.
type configEntry struct {
	MaxSecretBytes int  `json:"max_secret_bytes"`
	CASRequired    bool `json:"cas_required"`
}

func defaultConfig() *configEntry {
	return &configEntry{MaxSecretBytes: defaultMaxSecretBytes}
}

func (c *configEntry) responseData() map[string]any {
	return map[string]any{
		"max_secret_bytes": c.MaxSecretBytes,
		"cas_required":     c.CASRequired,
	}
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: configRoute,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "configuration",
		},
		Fields: map[string]*framework.FieldSchema{
			"max_secret_bytes": {
				Type:        framework.TypeInt,
				Description: "Largest JSON-encoded data a secret write may store, in bytes (1 to 1048576).",
				Default:     defaultMaxSecretBytes,
			},
			"cas_required": {
				Type:        framework.TypeBool,
				Description: "If true, every write to secrets/ must carry cas.",
				Default:     false,
			},
		},
		ExistenceCheck: b.configExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.configRead,
				Summary:  "Read the mount's settings; defaults when none were written.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: configResponseFields}},
				},
			},
			logical.CreateOperation: b.configWriteOperation("Create the mount's settings."),
			logical.UpdateOperation: b.configWriteOperation("Update the given settings; the others keep their values."),
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.configDelete,
				Summary:                     "Reset the mount's settings to the defaults.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses: map[int][]framework.Response{
					http.StatusNoContent: {{Description: "No Content"}},
				},
			},
		},
		HelpSynopsis:    configHelpSynopsis,
		HelpDescription: configHelpDescription,
	}
}

func (b *backend) configWriteOperation(summary string) *framework.PathOperation {
	return &framework.PathOperation{
		Callback:                    b.configWrite,
		Summary:                     summary,
		ForwardPerformanceStandby:   true,
		ForwardPerformanceSecondary: true,
		Responses: map[int][]framework.Response{
			http.StatusNoContent: {{Description: "No Content"}},
		},
	}
}

var configResponseFields = map[string]*framework.FieldSchema{
	"max_secret_bytes": {
		Type:        framework.TypeInt,
		Description: "Largest JSON-encoded data a secret write may store, in bytes.",
		Required:    true,
	},
	"cas_required": {
		Type:        framework.TypeBool,
		Description: "Whether every write to secrets/ must carry cas.",
		Required:    true,
	},
}

// loadConfig returns the cached settings, reading storage on first use.
func (b *backend) loadConfig(ctx context.Context, s logical.Storage) (*configEntry, error) {
	b.configLock.RLock()
	cfg := b.config
	b.configLock.RUnlock()
	if cfg != nil {
		return cfg, nil
	}

	b.configLock.Lock()
	defer b.configLock.Unlock()
	return b.loadConfigLocked(ctx, s)
}

// loadConfigLocked is loadConfig for a caller that holds configLock for writing.
func (b *backend) loadConfigLocked(ctx context.Context, s logical.Storage) (*configEntry, error) {
	if b.config != nil {
		return b.config, nil
	}
	cfg := defaultConfig()
	if _, err := getJSON(ctx, s, configStorageKey, cfg); err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	b.config = cfg
	return cfg, nil
}

func (b *backend) configExistenceCheck(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	return configExists(ctx, req.Storage)
}

func configExists(ctx context.Context, s logical.Storage) (bool, error) {
	entry, err := s.Get(ctx, configStorageKey)
	if err != nil {
		return false, fmt.Errorf("reading config: %w", err)
	}
	return entry != nil, nil
}

func (b *backend) configRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: cfg.responseData()}, nil
}

func (b *backend) configWrite(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	update, resp := parseConfigUpdate(req.Data)
	if resp != nil {
		return resp, nil
	}

	b.configLock.Lock()
	defer b.configLock.Unlock()
	current, err := b.loadConfigLocked(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	updated := *current
	if update.maxSecretBytes != nil {
		updated.MaxSecretBytes = *update.maxSecretBytes
	}
	if update.casRequired != nil {
		updated.CASRequired = *update.casRequired
	}
	if err := putJSON(ctx, req.Storage, configStorageKey, &updated); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	b.config = &updated
	b.Logger().Info("config written", "max_secret_bytes", updated.MaxSecretBytes, "cas_required", updated.CASRequired)
	return nil, nil
}

func (b *backend) configDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	if err := req.Storage.Delete(ctx, configStorageKey); err != nil {
		return nil, fmt.Errorf("deleting config: %w", err)
	}
	b.config = defaultConfig()
	b.Logger().Info("config deleted; defaults apply")
	return nil, nil
}

const configHelpSynopsis = "Settings of this mount: secret size limit and check-and-set policy."

const configHelpDescription = `
Read returns the current settings, or the defaults when none were written.
A write changes only the fields it carries; the others keep their values.
Delete returns every setting to its default.

  max_secret_bytes  the largest JSON-encoded "data" a secret write may store
                    (default 524288, at most 1048576: integrated storage's
                    own entry limit)
  cas_required      when true, every write to secrets/ must carry "cas"
                    (default false)
`
