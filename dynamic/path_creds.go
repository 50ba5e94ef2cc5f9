package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/logical"
)

// credsRoute is the prefix of the paths that issue users.
const credsRoute = "creds/"

func (b *backend) pathCreds() *framework.Path {
	return &framework.Path{
		Pattern: credsRoute + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "generate",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeLowerCaseString,
				Description: "The role to issue a user of.",
				Required:    true,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.credsRead,
				Summary:  "Create a Redis user with the role's rules; it lives as long as the lease returned with it.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: userFields}},
				},
			},
		},
		HelpSynopsis:    "Issue a Redis user of a role, with a lease.",
		HelpDescription: "Each read creates a new ACL user with a generated name and password and the role's rules, and returns them with a lease. Renew the lease to keep the user, up to the role's max_ttl; revoke it, or let it expire, and the user is deleted.",
	}
}

func (b *backend) credsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("name: no role %q", name), nil
	}
	var resp *logical.Response
	err = b.withUser(ctx, req.Storage, name, func(ctx context.Context, conn *connection, username string) error {
		password, err := base62.Random(32)
		if err != nil {
			return err
		}
		rules := []string{"reset", "on", ">" + password}
		for _, rule := range role.rules() {
			rules = append(rules, rule[1])
		}
		if err := conn.ACLSetUser(ctx, username, rules...).Err(); err != nil {
			return fmt.Errorf("ACL SETUSER: %w", err)
		}
		if err := conn.save(ctx); err != nil {
			return err
		}
		record := userRecord{Role: name, IssuedAt: time.Now().Unix(), MaxTTL: role.MaxTTL}
		if err := putJSON(ctx, req.Storage, userStorageKey(username), record); err != nil {
			return err
		}
		lease := leaseData{Username: username, Role: name, TTL: role.TTL, MaxTTL: role.MaxTTL}
		resp = b.Secret(secretTypeUser).Response(map[string]any{"username": username, "password": password}, lease.internal())
		resp.Secret.TTL = seconds(role.TTL)
		resp.Secret.MaxTTL = seconds(role.MaxTTL)
		return nil
	})
	if errors.Is(err, errNoConfig) {
		return logical.ErrorResponse(err.Error()), nil
	}
	return resp, err
}

// withUser runs do with a new username under a write-ahead log entry: if
// do fails, the user is deleted at once; if the plugin dies before the
// entry is deleted, the rollback deletes the user, whatever do made of it.
func (b *backend) withUser(ctx context.Context, s logical.Storage, tag string, do func(context.Context, *connection, string) error) error {
	return b.withConn(ctx, s, func(conn *connection) error {
		username, err := b.newUsername(tag)
		if err != nil {
			return err
		}
		started := time.Now()
		walID, err := framework.PutWAL(ctx, s, walKindUser, &userWAL{Username: username})
		if err != nil {
			return err
		}
		if err := do(ctx, conn, username); err != nil {
			// Deleted now, not left to the rollback alone: a node deposed
			// while it held this create finds its storage refused, and the
			// new active node may have rolled the entry back already.
			return errors.Join(err, deleteUser(ctx, conn, username))
		}
		if err := framework.DeleteWAL(ctx, s, walID); err != nil {
			return err
		}
		// The rollback takes an entry older than its minimum age (whole
		// seconds) for abandoned: past that, it may have deleted the user.
		if time.Since(started) >= b.WALRollbackMinAge-time.Second {
			return errors.Join(fmt.Errorf("making user %s took %v, as long as the rollback waits before it deletes it", username, time.Since(started)),
				deleteUser(ctx, conn, username))
		}
		return nil
	})
}

// newUsername is a name no other user has: the mount's prefix, the role,
// and 95 random bits.
func (b *backend) newUsername(role string) (string, error) {
	random, err := base62.Random(16)
	if err != nil {
		return "", err
	}
	if len(role) > 32 {
		role = role[:32]
	}
	return b.userPrefix() + role + "-" + random, nil
}

// usernamePrefix begins the name of every user the plugin makes; the mount's
// tag follows it.
const usernamePrefix = "v-"

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }
