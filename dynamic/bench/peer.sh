#!/usr/bin/env bash
# Prints the path of HashiCorp's Redis database plugin, the peer the
# benchmarks compare with. PEER_BINARY wins; otherwise it is built once from
# the Go module proxy into a cache keyed by its version, and reused from there.
set -euo pipefail
# Built from a module of its own, which requires nothing else, as Vault is
# (../../e2e/vault.sh): neither this repository's modules nor the peer's
# move each other's requirements.
cd "$(dirname "$0")/peerbuild"

if [ -n "${PEER_BINARY:-}" ]; then
  echo "$PEER_BINARY"
  exit 0
fi

module=github.com/hashicorp/vault-plugin-database-redis
version=$(go list -m -f '{{.Version}}' "$module")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-database-redis"
binary="$cache/vault-plugin-database-redis-$version"
if [ ! -x "$binary" ]; then
  echo "Building $module $version into $binary, once." >&2
  mkdir -p "$cache"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.tmp" "$module/cmd/vault-plugin-database-redis" >&2
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
