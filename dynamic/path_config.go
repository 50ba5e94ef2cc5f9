package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/redis/go-redis/v9"
)

const (
	// configRoute is the config path's pattern; configStorageKey is where its
	// entry is stored, and stays there whatever the route is called.
	configRoute      = "config"
	configStorageKey = "config"

	// redisTimeout bounds each call to Redis, so that an unreachable Redis
	// fails a request instead of holding it until Vault's own deadline.
	redisTimeout = 5 * time.Second
)

// configEntry is how the plugin reaches Redis, as stored.
type configEntry struct {
	Address       string `json:"address"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	TLS           bool   `json:"tls"`
	CACert        string `json:"ca_cert"`
	TLSServerName string `json:"tls_server_name"`
	SaveACL       bool   `json:"save_acl"`
}

var configFields = map[string]*framework.FieldSchema{
	"address": {
		Type:        framework.TypeString,
		Description: "Redis's host:port.",
		Required:    true,
	},
	"username": {
		Type:        framework.TypeString,
		Description: "The ACL user the plugin logs in as: it must be allowed the ACL command (and ACL SAVE if save_acl is set).",
		Required:    true,
	},
	"password": {
		Type:        framework.TypeString,
		Description: "The admin user's password. Write-only: never returned. rotate-root replaces it with one only Vault knows.",
		DisplayAttrs: &framework.DisplayAttributes{
			Sensitive: true,
		},
	},
	"tls": {
		Type:        framework.TypeBool,
		Description: "If true, connect with TLS.",
		Default:     false,
	},
	"ca_cert": {
		Type:        framework.TypeString,
		Description: "PEM certificates that Redis's certificate must chain to; the system's roots when empty. Only with tls.",
	},
	"tls_server_name": {
		Type:        framework.TypeString,
		Description: "The name Redis's certificate must carry; the host of address when empty. Only with tls.",
	},
	"save_acl": {
		Type:        framework.TypeBool,
		Description: "If true, run ACL SAVE after every change of users, for a Redis that loads its users from an aclfile. Without it Redis forgets, when it restarts, every user made since it started, and rotate-root is refused.",
		Default:     false,
	},
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: configRoute,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "configuration",
		},
		Fields:         configFields,
		ExistenceCheck: entryExists(func(*framework.FieldData) string { return configStorageKey }),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.configRead,
				Summary:  "Read how the plugin reaches Redis; never the password.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: withoutField(configFields, "password")}},
				},
			},
			logical.CreateOperation: noContentWrite(b.configWrite, "Set how the plugin reaches Redis; the connection is checked first."),
			logical.UpdateOperation: noContentWrite(b.configWrite, "Change the given settings; the others keep their values. The connection is checked first."),
			logical.DeleteOperation: &framework.PathOperation{
				Callback: b.configDelete,
				Summary:  "Forget how to reach Redis. Leases issued before cannot be revoked until config is written again.",
				Responses: map[int][]framework.Response{
					http.StatusNoContent: {{Description: "No Content"}},
				},
			},
		},
		HelpSynopsis:    "How the plugin reaches Redis.",
		HelpDescription: "The address of Redis and the ACL user the plugin manages users as. The password is write-only. A write is stored only once the plugin could log in with it and list users.",
	}
}

func readConfig(ctx context.Context, s logical.Storage) (*configEntry, error) {
	var cfg configEntry
	found, err := getJSON(ctx, s, configStorageKey, &cfg)
	if err != nil || !found {
		return nil, err
	}
	return &cfg, nil
}

func (b *backend) configRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"address":         cfg.Address,
		"username":        cfg.Username,
		"tls":             cfg.TLS,
		"ca_cert":         cfg.CACert,
		"tls_server_name": cfg.TLSServerName,
		"save_acl":        cfg.SaveACL,
	}}, nil
}

func (b *backend) configWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(d); resp != nil {
		return resp, nil
	}
	// Under the write lock: the stored config and the connection change
	// together, and never under a rotation.
	b.connLock.Lock()
	defer b.connLock.Unlock()

	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &configEntry{}
	}
	if resp := cfg.update(d); resp != nil {
		return resp, nil
	}
	conn := cfg.connect()
	if err := cfg.check(ctx, conn); err != nil {
		_ = conn.Close()
		return logical.ErrorResponse(err.Error()), nil
	}
	if err := putJSON(ctx, req.Storage, configStorageKey, cfg); err != nil {
		_ = conn.Close()
		return nil, err
	}
	b.swapConn(conn)
	return nil, nil
}

// update applies the fields given and checks the result; a response is the
// caller's mistake.
func (cfg *configEntry) update(d *framework.FieldData) *logical.Response {
	for field, into := range map[string]*string{
		"address": &cfg.Address, "username": &cfg.Username, "password": &cfg.Password,
		"ca_cert": &cfg.CACert, "tls_server_name": &cfg.TLSServerName,
	} {
		v, ok, err := d.GetOkErr(field)
		if err != nil {
			return logical.ErrorResponse("%s: %v", field, err)
		}
		if ok {
			*into = v.(string)
		}
	}
	for field, into := range map[string]*bool{"tls": &cfg.TLS, "save_acl": &cfg.SaveACL} {
		v, ok, err := d.GetOkErr(field)
		if err != nil {
			return logical.ErrorResponse("%s: %v", field, err)
		}
		if ok {
			*into = v.(bool)
		}
	}
	host, port, err := net.SplitHostPort(cfg.Address)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		return logical.ErrorResponse("address: want host:port with a port from 1 to 65535, got %q", cfg.Address)
	}
	if cfg.Username == "" {
		return logical.ErrorResponse("username: required")
	}
	if cfg.Password == "" {
		return logical.ErrorResponse("password: required")
	}
	if !cfg.TLS && (cfg.CACert != "" || cfg.TLSServerName != "") {
		return logical.ErrorResponse("ca_cert and tls_server_name: only with tls set to true")
	}
	if cfg.CACert != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(cfg.CACert)) {
		return logical.ErrorResponse("ca_cert: no PEM certificate in it")
	}
	return nil
}

// connect makes a client; it connects lazily, on its first command.
func (cfg *configEntry) connect() *connection {
	opts := &redis.Options{
		Addr:         cfg.Address,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DialTimeout:  redisTimeout,
		ReadTimeout:  redisTimeout,
		WriteTimeout: redisTimeout,
		// A caller's retry is Vault's: each revocation it retries on its own.
		MaxRetries: -1,
		Protocol:   2,
	}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
		if cfg.CACert != "" {
			opts.TLSConfig.RootCAs = x509.NewCertPool()
			opts.TLSConfig.RootCAs.AppendCertsFromPEM([]byte(cfg.CACert))
		}
	}
	return &connection{Client: redis.NewClient(opts), saveACL: cfg.SaveACL}
}

// check proves that the config works: the user logs in, may list users, and
// may save them if asked to.
func (cfg *configEntry) check(ctx context.Context, conn *connection) error {
	if err := conn.ACLUsers(ctx).Err(); err != nil {
		return fmt.Errorf("address, username, password: as %q at %s, ACL USERS failed: %v", cfg.Username, cfg.Address, err)
	}
	if err := conn.save(ctx); err != nil {
		return fmt.Errorf("save_acl: %v", err)
	}
	return nil
}

func (b *backend) configDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.connLock.Lock()
	defer b.connLock.Unlock()
	if err := req.Storage.Delete(ctx, configStorageKey); err != nil {
		return nil, err
	}
	b.swapConn(nil)
	return nil, nil
}
