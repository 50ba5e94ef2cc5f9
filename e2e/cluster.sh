#!/usr/bin/env bash
# Runs a 3-node Vault (or, with SERVER=openbao, OpenBao) cluster on 127.0.0.1
# in the foreground: integrated storage (raft), one plugin directory per
# node, each holding the plugin, registered and enabled at MOUNT. Ctrl-C
# stops every node.
# Usage: PLUGIN=NAME MOUNT=PATH e2e/cluster.sh PLUGIN_BINARY VERSION (make cluster sets both)
# CLUSTER_ADDRS sets the nodes' API addresses; each node's cluster port
# (raft and request forwarding) is its API port + 1, as Vault's 8200/8201.
set -euo pipefail
binary=$1 version=$2
name=${PLUGIN:?the plugin name, as the Makefile sets it} mount=${MOUNT:?the mount path, as the Makefile sets it}
read -r -a addrs <<< "${CLUSTER_ADDRS:-127.0.0.1:8200 127.0.0.1:8210 127.0.0.1:8220}"
vault=$("$(dirname "$0")/server.sh")
sha=$(cat "$binary.sha256")
# OpenBao registers the plugin from a block in each node's config, so no
# node ever runs an unchecked binary; Vault is told through its API below.
# OpenBao's standbys answer reads from their own state, a moment behind,
# unless told to forward them as Vault's do: the read through a standby
# below must see the write made just before it.
openbao=false
if "$vault" version | grep -q '^OpenBao'; then
  openbao=true
  export PLUGIN_NAME=$name PLUGIN_VERSION=$version PLUGIN_SHA256=$sha DISABLE_STANDBY_READS=true
fi

work=$(mktemp -d)
pids=()
stop() {
  if [ "${#pids[@]}" = 0 ]; then rm -rf "$work"; return; fi
  # SIGTERM lets each Vault stop its plugin process; SIGKILL after 10 s.
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  # A Vault killed with -9 leaves its plugin process running.
  for pid in $(ps -e -o pid=,args= | awk -v dir="$work/" 'index($2, dir) == 1 { print $1 }'); do
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 0' INT TERM

for i in 0 1 2; do
  node=$work/node$((i + 1)) host=${addrs[$i]%:*} port=${addrs[$i]##*:}
  mkdir -p "$node/raft" "$node/plugins"
  # The binary must be on every node: only the active node runs the plugin,
  # and any node may become active.
  cp "$binary" "$node/plugins/$name"
  peers=()
  for j in 0 1 2; do
    [ "$j" = "$i" ] || peers+=("${addrs[$j]}")
  done
  "$(dirname "$0")/node-config.sh" "$node" "node$((i + 1))" "${addrs[$i]}" "$host:$((port + 1))" "${peers[@]}" > "$node/server.hcl"
  "$vault" server -config="$node/server.hcl" > "$node/server.log" 2>&1 &
  pids+=($!)
done

# at ADDR CMD...: runs the vault CLI against one node.
at() { VAULT_ADDR="http://$1" "$vault" "${@:2}"; }
fail() { echo "cluster.sh: $*" >&2; tail -n 20 "$work"/node*/server.log >&2; exit 1; }
# vault status exits 0 when unsealed, 2 when sealed, 1 when it gets no answer.
answers() { local rc=0; at "$1" status >/dev/null 2>&1 || rc=$?; [ "$rc" != 1 ]; }
for addr in "${addrs[@]}"; do
  for _ in $(seq 300); do answers "$addr" && break; sleep 0.1; done
  answers "$addr" || fail "$addr does not answer"
done

init=$(at "${addrs[0]}" operator init -key-shares=1 -key-threshold=1)
key=$(awk '/^Unseal Key 1:/ { print $4 }' <<< "$init")
token=$(awk '/^Initial Root Token:/ { print $4 }' <<< "$init")
at "${addrs[0]}" operator unseal "$key" > /dev/null
# The other nodes join through retry_join once the first one is unsealed
# (attempts every 2 s), take the unseal key after that, and then unseal.
for addr in "${addrs[@]:1}"; do
  for _ in $(seq 150); do at "$addr" operator unseal "$key" > /dev/null 2>&1 && break; sleep 0.2; done
  for _ in $(seq 300); do at "$addr" status > /dev/null 2>&1 && break; sleep 0.1; done
  at "$addr" status > /dev/null 2>&1 || fail "$addr did not join and unseal"
done
export VAULT_ADDR="http://${addrs[0]}" VAULT_TOKEN="$token"
voters=0
for _ in $(seq 300); do
  voters=$("$vault" operator raft list-peers -format=json 2>/dev/null | grep -c '"voter": true' || true)
  [ "$voters" = 3 ] && break
  sleep 0.1
done
[ "$voters" = 3 ] || fail "$voters voters, want 3"

if [ "$openbao" = true ]; then
  echo "Registered $name $version by the plugin block in each node's server.hcl."
else
  "$vault" plugin register -sha256="$sha" -version="$version" secret "$name"
fi
"$vault" secrets enable -path="$mount" -plugin-version="$version" "$name"

setup="export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN"
if [ "$(command -v vault || true)" != "$vault" ]; then
  setup="$setup
  alias vault=$vault"
fi
verify="make verify-node PLUGIN_DIR=$work/node3/plugins VERSION=$version"
if [ "$(command -v vault || true)" != "$vault" ]; then
  verify="$verify VAULT=$vault"
fi
cat <<MSG

$("$vault" version | cut -d' ' -f1,2 | tr -d ,) is running as a 3-node cluster with $name $version
enabled at $mount/:

  node1  http://${addrs[0]}  active
  node2  http://${addrs[1]}  standby
  node3  http://${addrs[2]}  standby

Unseal key: $key. Files and logs: $work. In another shell:

  $setup

  vault operator raft list-peers
  VAULT_ADDR=http://${addrs[1]} vault write $mount/secrets/app data=username=app data=password=s3cr3t
  VAULT_ADDR=http://${addrs[2]} vault read $mount/secrets/app
  vault operator step-down; sleep 3
  vault operator raft list-peers
  VAULT_ADDR=http://${addrs[2]} vault read $mount/secrets/app
  $verify

A standby forwards the write to the active node. After a step-down another
node is active within seconds; requests in between fail and should be retried.
The last line, run in this repository, is the pre-flight check for node3: its
plugin directory holds the binary the catalog registered.

Press Ctrl-C to stop the cluster.
MSG
wait
