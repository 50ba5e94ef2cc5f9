module github.com/vault-reference/vault-plugin-secrets-reference/dynamic/e2e

go 1.26.0

// The tests import the fault harness of the static engine's e2e tests, and
// redistest from the plugin's own module.
replace (
	github.com/vault-reference/vault-plugin-secrets-reference => ../../
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic => ../
	github.com/vault-reference/vault-plugin-secrets-reference/e2e => ../../e2e
)

require (
	github.com/vault-reference/vault-plugin-secrets-reference/dynamic v0.0.0-00010101000000-000000000000
	github.com/vault-reference/vault-plugin-secrets-reference/e2e v0.0.0-00010101000000-000000000000
)

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
