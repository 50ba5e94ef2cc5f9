#!/usr/bin/env bash
# Runs TestChaos RUNS times against each server on the clean plugin and
# writes how often each test failed, with each failure's seed, to the file
# given (make chaos-runs writes e2e/CHAOS_RUNS.md). The goal is never.
set -euo pipefail
cd "$(dirname "$0")"
out=$1
runs=${RUNS:-10}
vault=$(./vault.sh)
bao=$(./bao.sh)
logs=.chaos/runs
mkdir -p "$logs"
rm -f "$logs"/*.log
declare -A passed failed seeds
for i in $(seq "$runs"); do
  for server in vault openbao; do
    log="$logs/$server-$i.log"
    VAULT_BINARY=$vault BAO_BINARY=$bao E2E_SERVER=$server \
      go test -count=1 -timeout 20m -run '^TestChaos' -v . >"$log" 2>&1 || true
    for test in $(grep -oE -- '--- (PASS|FAIL): TestChaos_[A-Za-z]+' "$log" | sort -u | sed 's/--- //; s/: /:/'); do
      key="$server ${test#*:}"
      case $test in
        PASS:*) passed[$key]=$(( ${passed[$key]:-0} + 1 )) ;;
        FAIL:*) failed[$key]=$(( ${failed[$key]:-0} + 1 ))
                seeds[$key]="${seeds[$key]:-} $(grep -m1 -oE 'CHAOS_SEED=[0-9]+' "$log" | cut -d= -f2) ($log)" ;;
      esac
    done
  done
done
{
  echo "# TestChaos on the clean plugin"
  echo
  echo "Written by \`make chaos-runs\` on $(date -u +%Y-%m-%d), $runs runs against each server, $(nproc) cores."
  echo
  echo "| server | test | passed | failed | seeds of the failures |"
  echo "|---|---|---|---|---|"
  for key in $(printf '%s\n' "${!passed[@]}" "${!failed[@]}" | tr ' ' '|' | sort -u); do
    k=${key/|/ }
    echo "| ${k%% *} | ${k#* } | ${passed[$k]:-0} | ${failed[$k]:-0} | ${seeds[$k]:-} |"
  done
} >"$out"
cat "$out"
