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
declare -A passed failed seeds checked exited redirected deposed
for i in $(seq "$runs"); do
  for server in vault openbao; do
    log="$logs/$server-$i.log"
    VAULT_BINARY=$vault BAO_BINARY=$bao E2E_SERVER=$server \
      go test -count=1 -timeout 20m -run '^TestChaos' -v . >"$log" 2>&1 || true
    for test in $(grep -oE -- '--- (PASS|FAIL): TestChaos_[A-Za-z]+' "$log" | sort -u | sed 's/--- //; s/: /:/'); do
      key="$server ${test#*:}"
      # What the history check's re-send rules admitted, from the test's own log line.
      read -r n e r d < <(awk -v t="${test#*:}" '$0 ~ "--- (PASS|FAIL): " {cur=""} $0 ~ "^=== [A-Z]+ +"t"$" {cur=t}
        cur==t && /operations checked in/ {match($0, /[0-9]+ operations checked/); n=substr($0,RSTART,RLENGTH)+0
          match($0, /[0-9]+ mutations in flight when a plugin/); e=substr($0,RSTART,RLENGTH)+0
          match($0, /[0-9]+ through a standby/); r=substr($0,RSTART,RLENGTH)+0
          match($0, /[0-9]+ held by an active node/); d=substr($0,RSTART,RLENGTH)+0}
        END {print n+0, e+0, r+0, d+0}' "$log")
      checked[$key]=$(( ${checked[$key]:-0} + n )); exited[$key]=$(( ${exited[$key]:-0} + e ))
      redirected[$key]=$(( ${redirected[$key]:-0} + r )); deposed[$key]=$(( ${deposed[$key]:-0} + d ))
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
  keys=$(printf '%s\n' "${!passed[@]}" "${!failed[@]}" | tr ' ' '|' | sort -u)
  for key in $keys; do
    k=${key/|/ }
    echo "| ${k%% *} | ${k#* } | ${passed[$k]:-0} | ${failed[$k]:-0} | ${seeds[$k]:-} |"
  done
  echo
  echo "What the history check's narrow exceptions admitted, over all runs: mutations that may"
  echo "have applied twice, of the operations checked ([the exceptions](README.md#what-testchaos-checks))."
  echo
  echo "| server | test | operations checked | in flight when a plugin process exited | through a standby while the active node changed | held by an active node when it was deposed |"
  echo "|---|---|---|---|---|---|"
  for key in $keys; do
    k=${key/|/ }
    echo "| ${k%% *} | ${k#* } | ${checked[$k]:-0} | ${exited[$k]:-0} | ${redirected[$k]:-0} | ${deposed[$k]:-0} |"
  done
} >"$out"
cat "$out"
