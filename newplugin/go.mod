module github.com/vault-reference/vault-plugin-secrets-reference/newplugin

go 1.26
