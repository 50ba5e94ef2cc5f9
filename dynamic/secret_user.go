package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/jsonutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// secretTypeUser names the plugin's leases in Vault's storage: every release
// must keep it, or leases issued before an upgrade can no longer be renewed
// or revoked ("secret is unsupported by this backend").
const secretTypeUser = "redis_user"

var userFields = map[string]*framework.FieldSchema{
	"username": {Type: framework.TypeString, Description: "The Redis ACL user."},
	"password": {Type: framework.TypeString, Description: "The user's password.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
}

func (b *backend) redisUser() *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeUser,
		Fields: userFields,
		Renew:  b.userRenew,
		Revoke: b.userRevoke,
	}
}

// leaseData is what a lease carries for its renewals and its revocation:
// all they need, so that neither reads the role, which may since have been
// changed or deleted.
type leaseData struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	TTL      int64  `json:"ttl"`
	MaxTTL   int64  `json:"max_ttl"`
}

func (l leaseData) internal() map[string]any {
	return map[string]any{"username": l.Username, "role": l.Role, "ttl": l.TTL, "max_ttl": l.MaxTTL}
}

// parseLeaseData reads what a lease carries; Vault hands it back decoded from
// JSON, numbers as float64 or json.Number.
func parseLeaseData(internal map[string]any) (*leaseData, error) {
	var l leaseData
	if err := decodeMap(internal, &l); err != nil {
		return nil, err
	}
	if l.Username == "" {
		return nil, errors.New("the lease carries no username")
	}
	return &l, nil
}

// decodeMap decodes a map Vault decoded from JSON into out.
func decodeMap(in any, out any) error {
	raw, err := jsonutil.EncodeJSON(in)
	if err != nil {
		return err
	}
	return jsonutil.DecodeJSON(raw, out)
}

func (b *backend) userRenew(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := parseLeaseData(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	ttl, warnings, err := framework.CalculateTTL(b.System(), req.Secret.Increment, seconds(lease.TTL), 0, seconds(lease.MaxTTL), 0, req.Secret.IssueTime)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	resp := &logical.Response{Secret: req.Secret, Warnings: warnings}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = seconds(lease.MaxTTL)
	return resp, nil
}

// userRevoke deletes the user. A user already gone is revoked: Vault retries
// a failed revocation, and a lease whose user someone deleted by hand must
// not block disabling the mount.
func (b *backend) userRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := parseLeaseData(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	return nil, b.withConn(ctx, req.Storage, func(conn *connection) error {
		if err := deleteUser(ctx, conn, lease.Username); err != nil {
			return err
		}
		return req.Storage.Delete(ctx, userStorageKey(lease.Username))
	})
}

// deleteUser deletes a user, or finds it gone.
func deleteUser(ctx context.Context, conn *connection, username string) error {
	if err := conn.ACLDelUser(ctx, username).Err(); err != nil {
		return fmt.Errorf("ACL DELUSER %s: %w", username, err)
	}
	return conn.save(ctx)
}
