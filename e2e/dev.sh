#!/usr/bin/env bash
# Runs a Vault (SERVER=openbao: OpenBao) dev server on 127.0.0.1:8200 in the
# foreground with the plugin registered by SHA-256 and version and enabled at
# $MOUNT/. Ctrl-C stops it.
# Usage: PLUGIN=NAME MOUNT=PATH e2e/dev.sh PLUGIN_BINARY VERSION (make dev
# passes the Makefile's PLUGIN and MOUNT)
set -euo pipefail
binary=$1 version=$2
name=${PLUGIN:?set PLUGIN to the plugin name} mount=${MOUNT:?set MOUNT to the mount path}
addr=${DEV_ADDR:-127.0.0.1:8200}
token=${DEV_TOKEN:-root}
vault=$("$(dirname "$0")/server.sh")

work=$(mktemp -d)
mkdir "$work/plugins"
cp "$binary" "$work/plugins/$name"
sha=$(cat "$binary.sha256")
printf 'plugin_directory = "%s"\n' "$work/plugins" > "$work/dev.hcl"

"$vault" server -dev -dev-root-token-id="$token" -dev-listen-address="$addr" \
  -config="$work/dev.hcl" > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
trap 'exit 0' INT TERM

export VAULT_ADDR="http://$addr" VAULT_TOKEN="$token"
for _ in $(seq 100); do
  "$vault" status >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
"$vault" plugin register -sha256="$sha" -version="$version" secret "$name"
"$vault" secrets enable -path="$mount" "$name"

setup="export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN"
if [ "$(command -v vault || true)" != "$vault" ]; then
  setup="$setup
  alias vault=$vault"
fi
cat <<MSG

$("$vault" version | cut -d' ' -f1,2) is running with $name $version enabled at $mount/.
Server log: $work/server.log. In another shell:

  $setup

  vault write $mount/secrets/app data=username=app data=password=s3cr3t
  vault read $mount/secrets/app
  vault list $mount/secrets

Press Ctrl-C to stop the server.
MSG
wait "$server"
