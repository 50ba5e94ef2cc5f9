package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// rolesRoute is the prefix of the roles' paths; roleStorageKey, not the
// route, says where a role is stored.
const rolesRoute = "roles/"

func roleStorageKey(name string) string { return "roles/" + name }

// roleEntry is what a user of the role may do in Redis, and how long its
// lease lives.
type roleEntry struct {
	KeyPatterns     []string `json:"key_patterns"`
	ChannelPatterns []string `json:"channel_patterns"`
	Commands        []string `json:"commands"`
	// TTL and MaxTTL are in seconds; 0 is the mount's default and maximum.
	TTL    int64 `json:"ttl"`
	MaxTTL int64 `json:"max_ttl"`
}

// rules are the ACL SETUSER rules a user of the role gets, by the field they
// come from.
func (r *roleEntry) rules() [][2]string {
	var rules [][2]string
	for _, p := range r.KeyPatterns {
		rules = append(rules, [2]string{"key_patterns", "~" + p})
	}
	for _, p := range r.ChannelPatterns {
		rules = append(rules, [2]string{"channel_patterns", "&" + p})
	}
	for _, c := range r.Commands {
		rules = append(rules, [2]string{"commands", c})
	}
	return rules
}

var roleFields = map[string]*framework.FieldSchema{
	"name": {
		Type:        framework.TypeLowerCaseString,
		Description: "The role's name.",
		Required:    true,
	},
	"key_patterns": {
		Type:        framework.TypeCommaStringSlice,
		Description: `Glob patterns of the keys a user may access, as in ACL's ~pattern (give "cache:*", not "~cache:*"). None: no key.`,
	},
	"channel_patterns": {
		Type:        framework.TypeCommaStringSlice,
		Description: `Glob patterns of the Pub/Sub channels a user may access, as in ACL's &pattern (give "news.*"). None: no channel.`,
	},
	"commands": {
		Type:        framework.TypeCommaStringSlice,
		Description: `ACL command rules, applied in order: +command, -command, +@category, -@category, +command|subcommand (for example "+@read,+set,-keys"). None: no command.`,
	},
	"ttl": {
		Type:        framework.TypeDurationSecond,
		Description: "How long a lease lives before it must be renewed. 0: the mount's default lease TTL.",
	},
	"max_ttl": {
		Type:        framework.TypeDurationSecond,
		Description: "How long a lease may live at most, renewals included, from its issue. 0: the mount's maximum lease TTL.",
	},
}

func (b *backend) pathRoles() *framework.Path {
	return &framework.Path{
		Pattern: rolesRoute + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "role",
		},
		Fields:         roleFields,
		ExistenceCheck: entryExists(func(d *framework.FieldData) string { return roleStorageKey(d.Get("name").(string)) }),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.roleRead,
				Summary:  "Read a role.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: withoutField(roleFields, "name")}},
				},
			},
			logical.CreateOperation: noContentWrite(b.roleWrite, "Create a role; Redis checks its rules first."),
			logical.UpdateOperation: noContentWrite(b.roleWrite, "Change the given fields of a role; Redis checks its rules first. Users issued before keep the rules they were given."),
			logical.DeleteOperation: &framework.PathOperation{
				Callback: b.roleDelete,
				Summary:  "Delete a role. Its leases live on, and are revoked as any other.",
				Responses: map[int][]framework.Response{
					http.StatusNoContent: {{Description: "No Content"}},
				},
			},
		},
		HelpSynopsis:    "What a user issued for this role may do in Redis, and how long its lease lives.",
		HelpDescription: "A role holds ACL rules (key patterns, channel patterns, commands) and the ttl and max_ttl of its leases. Redis itself checks the rules when the role is written; rules it refuses are a 400 naming the field.",
	}
}

func (b *backend) pathRolesList() *framework.Path {
	return &framework.Path{
		Pattern: rolesRoute + "?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "roles",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{
				Callback: b.roleList,
				Summary:  "List the roles' names.",
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
						"keys": {Type: framework.TypeStringSlice, Description: "The roles' names."},
					}}},
				},
			},
		},
		HelpSynopsis:    "List the roles.",
		HelpDescription: "The names of the roles, in order.",
	}
}

func readRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	var role roleEntry
	found, err := getJSON(ctx, s, roleStorageKey(name), &role)
	if err != nil || !found {
		return nil, err
	}
	return &role, nil
}

func (b *backend) roleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := readRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || role == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"key_patterns":     nonNil(role.KeyPatterns),
		"channel_patterns": nonNil(role.ChannelPatterns),
		"commands":         nonNil(role.Commands),
		"ttl":              role.TTL,
		"max_ttl":          role.MaxTTL,
	}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(d); resp != nil {
		return resp, nil
	}
	name := d.Get("name").(string)
	lock := locksutil.LockForKey(b.roleLocks, name)
	lock.Lock()
	defer lock.Unlock()

	role, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		role = &roleEntry{}
	}
	if resp := role.update(d); resp != nil {
		return resp, nil
	}
	if resp, err := b.checkRules(ctx, req.Storage, role); resp != nil || err != nil {
		return resp, err
	}
	return nil, putJSON(ctx, req.Storage, roleStorageKey(name), role)
}

// update applies the fields given and checks what can be checked without
// Redis; a response is the caller's mistake.
func (r *roleEntry) update(d *framework.FieldData) *logical.Response {
	for field, into := range map[string]*[]string{
		"key_patterns": &r.KeyPatterns, "channel_patterns": &r.ChannelPatterns, "commands": &r.Commands,
	} {
		v, ok, err := d.GetOkErr(field)
		if err != nil {
			return logical.ErrorResponse("%s: %v", field, err)
		}
		if ok {
			*into = v.([]string)
		}
	}
	for field, into := range map[string]*int64{"ttl": &r.TTL, "max_ttl": &r.MaxTTL} {
		v, ok, err := d.GetOkErr(field)
		if err != nil {
			return logical.ErrorResponse("%s: %v", field, err)
		}
		if ok {
			*into = int64(v.(int))
		}
		if *into < 0 {
			return logical.ErrorResponse("%s: want 0 or more seconds, got %d", field, *into)
		}
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return logical.ErrorResponse("ttl: want at most max_ttl (%v), got %v", time.Duration(r.MaxTTL)*time.Second, time.Duration(r.TTL)*time.Second)
	}
	for _, rule := range r.rules() {
		field, value := rule[0], rule[1]
		switch {
		case len(value) < 2:
			return logical.ErrorResponse("%s: an empty entry", field)
		case strings.ContainsFunc(value, unicode.IsSpace):
			// Redis would take it, and then write an aclfile it cannot load.
			return logical.ErrorResponse("%s: %q holds white space, which an aclfile cannot", field, value)
		case field == "commands" && value[0] != '+' && value[0] != '-':
			// Anything else (on, nopass, >password, allkeys) would change
			// who may log in or what the user may touch.
			return logical.ErrorResponse("commands: %q must begin with + or -", value)
		}
	}
	return nil
}

// checkRules has Redis check the role's rules on a user made for that alone,
// never enabled, one field at a time so that a refusal names its field.
func (b *backend) checkRules(ctx context.Context, s logical.Storage, role *roleEntry) (*logical.Response, error) {
	byField := map[string][]string{}
	var fields []string
	for _, rule := range role.rules() {
		if byField[rule[0]] == nil {
			fields = append(fields, rule[0])
		}
		byField[rule[0]] = append(byField[rule[0]], rule[1])
	}
	if len(fields) == 0 {
		return nil, nil
	}
	var refused *logical.Response
	err := b.withUser(ctx, s, "check", func(ctx context.Context, conn *connection, username string) error {
		for _, field := range fields {
			err := conn.ACLSetUser(ctx, username, append([]string{"reset", "off"}, byField[field]...)...).Err()
			if isRedisError(err) {
				refused = logical.ErrorResponse("%s: Redis refused it: %v", field, err)
				break
			}
			if err != nil {
				return fmt.Errorf("ACL SETUSER: %w", err)
			}
		}
		return deleteUser(ctx, conn, username)
	})
	if err != nil {
		return nil, err
	}
	return refused, nil
}

func (b *backend) roleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := locksutil.LockForKey(b.roleLocks, name)
	lock.Lock()
	defer lock.Unlock()
	return nil, req.Storage.Delete(ctx, roleStorageKey(name))
}

func (b *backend) roleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, "roles/")
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}
