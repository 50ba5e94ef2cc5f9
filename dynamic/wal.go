package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/redis/go-redis/v9"
)

// The kinds of write-ahead log entries: each names an operation on Redis
// that storage does not yet record as done.
const (
	walKindUser       = "user"
	walKindRotateRoot = "rotate-root"
)

// userWAL is written before a user is made; while it stands, the user may
// exist without a lease.
type userWAL struct {
	Username string `json:"username"`
}

// walRollback undoes what an abandoned operation may have left in Redis.
// Vault calls it on the active node about once a minute for entries older
// than WALRollbackMinAge, and deletes the entry when it returns nil.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	switch kind {
	case walKindUser:
		var w userWAL
		if err := decodeMap(data, &w); err != nil {
			return err
		}
		return b.withConn(ctx, req.Storage, func(conn *connection) error {
			return deleteUser(ctx, conn, w.Username)
		})
	case walKindRotateRoot:
		var w rotationWAL
		if err := decodeMap(data, &w); err != nil {
			return err
		}
		return b.rollBackRotation(ctx, req.Storage, &w)
	}
	// Kept, not dropped: a newer release wrote it and knows what to undo.
	return fmt.Errorf("unknown write-ahead log kind %q", kind)
}

// isRedisError tells Redis's refusal of a command from a failure to reach
// it.
func isRedisError(err error) bool {
	var refused redis.Error
	return errors.As(err, &refused)
}
