#!/usr/bin/env bash
# Paired load runs (docs/performance.md, "How to rerun the pairs"): the unaudited baseline, an
# old and a new build of the service, one right after the other, ROUNDS times, the order of old
# and new alternating from round to round, each run with the load average before it.
#
#   LOAD_BASELINE_BIN=… LOAD_OLD_BIN=… LOAD_NEW_BIN=… bash scripts/load-pairs.sh [ROUNDS] [load.sh options]
#
# LOAD_NEW_ENV="RPS_CDS_STORAGE__GATHER_MAX_US=2000" sets environment for the new build only
# (the old one may not know the key). Prints one PAIR line per run (kind, load average, the
# LOAD line and the writer's commit histogram and records per commit) and, per round, the rate
# each audited build keeps of the baseline's and its audit CPU per request (audited minus
# baseline server CPU per request).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
shift || true
: "${LOAD_BASELINE_BIN:?path of the unaudited baseline binary}"
: "${LOAD_OLD_BIN:?path of the old binary}"
: "${LOAD_NEW_BIN:?path of the new binary}"

field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

run() {
    local kind="$1" out
    shift
    local load
    load="$(cut -d' ' -f1 /proc/loadavg)"
    case "$kind" in
        baseline) out="$(RPS_CDS_BASELINE_BIN="$LOAD_BASELINE_BIN" bash "$ROOT/scripts/load.sh" --baseline "$@")" ;;
        old) out="$(RPS_CDS_BIN="$LOAD_OLD_BIN" bash "$ROOT/scripts/load.sh" "$@")" ;;
        new) out="$(env ${LOAD_NEW_ENV:-} RPS_CDS_BIN="$LOAD_NEW_BIN" bash "$ROOT/scripts/load.sh" "$@")" ;;
    esac
    local summary commit batch
    summary="$(echo "$out" | grep '^LOAD ')"
    commit="$(echo "$out" | grep 'rps_cds_audit_commit_duration_seconds:' | sed 's/^ *//' || true)"
    batch="$(echo "$out" | grep 'rps_cds_audit_batch_size:' | sed 's/^ *//' || true)"
    echo "PAIR kind=$kind load_before=$load $summary ${commit:+| $commit} ${batch:+| $batch}"
    RUN_RPS="$(echo "$summary" | field rps)"
    RUN_CPU="$(echo "$summary" | field server_cpu_us_per_request)"
}

for round in $(seq 1 "$ROUNDS"); do
    run baseline "$@"
    base_rps="$RUN_RPS" base_cpu="$RUN_CPU"
    order="old new"
    [ $((round % 2)) -eq 0 ] && order="new old"
    line="ROUND $round ($order)"
    for kind in $order; do
        run "$kind" "$@"
        line="$line $kind: kept=$(awk -v a="$RUN_RPS" -v b="$base_rps" 'BEGIN { printf "%.1f%%", a / b * 100 }') audit_cpu_us=$((RUN_CPU - base_cpu))"
    done
    echo "$line"
done
