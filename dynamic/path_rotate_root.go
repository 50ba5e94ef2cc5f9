package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/logical"
)

const rotateRootRoute = "rotate-root"

// rotationWAL is written before the admin user is given a new password.
// While it stands Redis may hold both passwords, and storage either.
type rotationWAL struct {
	Username    string `json:"username"`
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

func (b *backend) pathRotateRoot() *framework.Path {
	return &framework.Path{
		Pattern: rotateRootRoute,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "rotate",
			OperationSuffix: "root-credentials",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.rotateRoot,
				Summary:  "Replace the admin user's password with one only Vault knows.",
				Responses: map[int][]framework.Response{
					http.StatusNoContent: {{Description: "No Content"}},
				},
			},
		},
		HelpSynopsis: "Replace the admin user's password.",
		HelpDescription: "Gives the admin user of config a new generated password, stores it, then removes the old one from Redis. " +
			"Needs save_acl, or Redis would forget the new password when it restarts. " +
			"A write-ahead log entry covers the rotation: after a crash either password in storage still logs in, and the rollback removes the other.",
	}
}

func (b *backend) rotateRoot(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.connLock.Lock()
	defer b.connLock.Unlock()
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errNoConfig.Error()), nil
	}
	if !cfg.SaveACL {
		return logical.ErrorResponse("save_acl: rotate-root needs it set to true in config, or Redis would forget the new password when it restarts and lock the plugin out"), nil
	}
	conn, err := b.lockedConn(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	newPassword, err := base62.Random(32)
	if err != nil {
		return nil, err
	}
	rotation := &rotationWAL{Username: cfg.Username, OldPassword: cfg.Password, NewPassword: newPassword}
	started := time.Now()
	walID, err := framework.PutWAL(ctx, req.Storage, walKindRotateRoot, rotation)
	if err != nil {
		return nil, err
	}
	// Redis keeps both passwords until storage holds the new one, so that
	// whichever storage holds after a crash still logs in.
	if err := conn.ACLSetUser(ctx, cfg.Username, ">"+newPassword).Err(); err != nil {
		return nil, fmt.Errorf("ACL SETUSER %s: %w", cfg.Username, err)
	}
	if err := conn.save(ctx); err != nil {
		return nil, err
	}
	cfg.Password = newPassword
	if err := putJSON(ctx, req.Storage, configStorageKey, cfg); err != nil {
		return nil, err
	}
	b.swapConn(cfg.connect())
	if err := removePassword(ctx, b.conn, cfg.Username, rotation.OldPassword); err != nil {
		return nil, err
	}
	if time.Since(started) >= b.WALRollbackMinAge-time.Second {
		// The rollback may be undoing it: it keeps whichever password
		// storage holds, so leave the entry to it and say so.
		return nil, fmt.Errorf("the rotation took %v, as long as the rollback waits before it undoes one", time.Since(started))
	}
	return nil, framework.DeleteWAL(ctx, req.Storage, walID)
}

// rollBackRotation finishes or undoes an abandoned rotation: of the two
// passwords, it keeps the one storage holds.
func (b *backend) rollBackRotation(ctx context.Context, s logical.Storage, w *rotationWAL) error {
	b.connLock.Lock()
	defer b.connLock.Unlock()
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil || cfg.Username != w.Username {
		// Config was deleted or replaced since: neither password is the
		// plugin's to remove any more.
		return nil
	}
	stale := w.NewPassword
	if cfg.Password == w.NewPassword {
		stale = w.OldPassword
	}
	conn, err := b.lockedConn(ctx, s)
	if err != nil {
		return err
	}
	return removePassword(ctx, conn, cfg.Username, stale)
}

// removePassword takes one password from a user, or finds it gone.
func removePassword(ctx context.Context, conn *connection, username, password string) error {
	err := conn.ACLSetUser(ctx, username, "<"+password).Err()
	if isRedisError(err) && strings.Contains(err.Error(), "not exist") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("ACL SETUSER %s: %w", username, err)
	}
	return conn.save(ctx)
}
