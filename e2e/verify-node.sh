#!/usr/bin/env bash
# Pre-flight check for one node of a Vault cluster: the plugin binary in this
# node's plugin directory must be the one the catalog registered, or the node
# cannot mount the plugin when it becomes active, and Vault only logs it.
# Run it on every node, before an upgrade and before a node may take over.
# Usage: VAULT_ADDR=... VAULT_TOKEN=... verify-node.sh PLUGIN_DIRECTORY VERSION [NAME]
# VAULT names the vault CLI if it is not the one on PATH.
set -euo pipefail
dir=$1 version=$2 name=${3:-vault-plugin-secrets-reference}
vault=${VAULT:-vault}

info() { "$vault" plugin info -version="$version" -field="$1" secret "$name"; }
if ! want=$(info sha256) || ! command=$(info command); then
  echo "FAIL: cannot read $name $version from the catalog at ${VAULT_ADDR:-the default address}: is it registered, and may VAULT_TOKEN read it?" >&2
  exit 1
fi
binary="$dir/$command"
if [ ! -f "$binary" ]; then
  echo "FAIL: $binary is missing; the catalog registers $name $version with sha256 $want." >&2
  echo "This node cannot serve the plugin when it becomes active: copy the binary there." >&2
  exit 1
fi
if command -v sha256sum >/dev/null 2>&1; then
  got=$(sha256sum "$binary" | cut -d' ' -f1)
else
  got=$(shasum -a 256 "$binary" | cut -d' ' -f1)
fi
if [ "$got" != "$want" ]; then
  echo "FAIL: $binary has sha256 $got; the catalog registers $name $version with sha256 $want." >&2
  echo "This node cannot serve the plugin when it becomes active: copy the registered binary there." >&2
  exit 1
fi
echo "OK: $binary is $name $version as registered (sha256 $want)."
