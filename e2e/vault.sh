#!/usr/bin/env bash
# Prints the path of a Vault server binary for the e2e tests and `make dev`.
# VAULT_BINARY wins; then a `vault` on PATH of the same minor version; otherwise
# Vault is built once from the Go module proxy (about 20 minutes on 2 cores) into
# a cache keyed by its version, and reused from there.
set -euo pipefail
# Vault is built from a module of its own, which requires nothing else: the
# tests' module then cannot move any of the modules Vault is built from.
cd "$(dirname "$0")/vaultbuild"

if [ -n "${VAULT_BINARY:-}" ]; then
  echo "$VAULT_BINARY"
  exit 0
fi

version=$(go list -m -f '{{.Version}}' github.com/hashicorp/vault)
minor=${version%.*}
if command -v vault >/dev/null 2>&1 && vault version 2>/dev/null | grep -q "^Vault ${minor}\."; then
  command -v vault
  exit 0
fi

# Not named after the plugin: every plugin started from this one shares it.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-from-source"
binary="$cache/vault-$version"
if [ ! -x "$binary" ]; then
  echo "Building Vault $version into $binary; this takes about 20 minutes once." >&2
  mkdir -p "$cache"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.tmp" github.com/hashicorp/vault >&2
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
