#!/usr/bin/env bash
# Prints the server config of one node of a raft cluster on loopback: the one
# place both e2e/cluster.sh and the e2e tests write it.
# Usage: e2e/node-config.sh NODE_DIR NODE_ID API_ADDR CLUSTER_ADDR PEER_API_ADDR...
# The node keeps its raft data in NODE_DIR/raft and its plugins in
# NODE_DIR/plugins; it joins the cluster through any of the peers.
# With PLUGIN_SHA256 set, the config also declares the plugin PLUGIN_NAME
# (PLUGIN_VERSION, run as PLUGIN_COMMAND, default its name), which OpenBao
# registers when it starts; Vault ignores the block.
set -euo pipefail
dir=$1 id=$2 api=$3 cluster=$4
shift 4
cat <<HCL
# performance_multiplier = 1 is the production timing: elections in about
# 2 s instead of 7-12 s with the development default. Autopilot promotes a
# joined node to voter on its next reconcile, every 10 s by default; every
# second here, so a cluster is up sooner.
storage "raft" {
  path                         = "$dir/raft"
  node_id                      = "$id"
  performance_multiplier       = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "500ms"
HCL
for peer in "$@"; do
  printf '  retry_join {\n    leader_api_addr = "http://%s"\n  }\n' "$peer"
done
cat <<HCL
}
listener "tcp" {
  address         = "$api"
  cluster_address = "$cluster"
  tls_disable     = true
}
api_addr         = "http://$api"
cluster_addr     = "https://$cluster"
plugin_directory = "$dir/plugins"
disable_mlock    = true
HCL
# OpenBao 2.5 and later answer reads on a standby from its own copy of raft,
# through its own plugin process, unless told to forward them as Vault does.
if [ "${DISABLE_STANDBY_READS:-}" = true ]; then
  echo "disable_standby_reads = true"
fi
if [ -n "${PLUGIN_SHA256:-}" ]; then
  cat <<HCL
plugin "secret" "${PLUGIN_NAME:?with PLUGIN_SHA256}" {
  command   = "${PLUGIN_COMMAND:-$PLUGIN_NAME}"
  version   = "${PLUGIN_VERSION:?with PLUGIN_SHA256}"
  sha256sum = "$PLUGIN_SHA256"
}
HCL
fi
