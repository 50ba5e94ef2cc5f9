// Command vault-plugin-secrets-redis-reference is a Vault secrets engine that
// issues Redis ACL users with leases, served as an external plugin: Vault
// starts it and speaks to it over gRPC.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	flags.SetOutput(stderr)
	printVersion := flags.Bool("version", false, "print the plugin version and exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *printVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}

	// One process serves every mount of the plugin; on a Vault that cannot
	// multiplex, ServeMultiplex falls back to one process per mount.
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
	if err != nil {
		hclog.New(&hclog.LoggerOptions{Output: stderr}).Error("plugin shut down", "error", err)
		return 1
	}
	return 0
}
