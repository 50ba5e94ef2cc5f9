module github.com/vault-reference/vault-plugin-secrets-reference/e2e

go 1.26

// The tests run the API's cases of the root module's package apicases.
replace github.com/vault-reference/vault-plugin-secrets-reference => ../

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/vault-reference/vault-plugin-secrets-reference v0.0.0-00010101000000-000000000000
)
