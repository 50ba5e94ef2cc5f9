// Command floor is the slowest an external plugin need be: each request makes
// exactly one storage call and nothing else, no validation, no locks. Through
// Vault it measures the plugin transport itself, the floor every external
// plugin stands on.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	if err := meta.FlagSet().Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
	if err != nil {
		hclog.Default().Error("plugin shut down", "error", err)
		os.Exit(1)
	}
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		BackendType:    logical.TypeLogical,
		RunningVersion: "v0.0.1",
		Paths: []*framework.Path{
			{
				Pattern: "secrets/" + framework.MatchAllRegex("name"),
				Fields:  map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}, "data": {Type: framework.TypeMap}},
				Callbacks: map[logical.Operation]framework.OperationFunc{
					logical.ReadOperation:   read,
					logical.UpdateOperation: write,
					logical.ListOperation:   list,
				},
			},
		},
	}
	return b, b.Setup(ctx, conf)
}

func read(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	entry, err := req.Storage.Get(ctx, req.Path)
	if err != nil || entry == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{"data": string(entry.Value)}}, nil
}

func write(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	value, _ := req.Data["data"].(map[string]interface{})["password"].(string)
	return nil, req.Storage.Put(ctx, &logical.StorageEntry{Key: req.Path, Value: []byte(value)})
}

func list(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, req.Path)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(keys), nil
}
