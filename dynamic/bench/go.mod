module github.com/vault-reference/vault-plugin-secrets-reference/dynamic/bench

go 1.26.0

// The harness runs the engines through the static engine's fault harness,
// and judges leases with the lease proof's ledger and checks; HashiCorp's
// plugin is built apart, in peerbuild, and never required here.
replace (
	github.com/vault-reference/vault-plugin-secrets-reference => ../../
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic => ../
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e => ../e2e
	github.com/vault-reference/vault-plugin-secrets-reference/e2e => ../../e2e
)

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic v0.0.0-00010101000000-000000000000
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e v0.0.0-00010101000000-000000000000
	github.com/vault-reference/vault-plugin-secrets-reference/e2e v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
