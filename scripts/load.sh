#!/usr/bin/env bash
# Load test of the real service over loopback HTTP (see docs/performance.md).
#
#   bash scripts/load.sh                 # audit on SQLite in a temporary data dir
#   bash scripts/load.sh --postgres      # audit on a throwaway PostgreSQL (.ci/postgres.sh)
#   RPS_CDS_STORAGE__URL=postgres://... bash scripts/load.sh   # audit on a PostgreSQL you give
#
# Options (or the environment variables in brackets):
#   --duration 20s [LOAD_DURATION]  --threads 2 [LOAD_THREADS]  --connections 16 [LOAD_CONNECTIONS]
#   --request FILE [LOAD_REQUEST]   --service ID [LOAD_SERVICE]  --port N [LOAD_PORT]
#   --log-level LEVEL [LOAD_LOG_LEVEL, default info: the production default]
#   LOAD_PG_FSYNC=on|off: fsync of the PostgreSQL that --postgres starts (default on)
#   --baseline: the same service built without the audit write (cargo feature
#     unaudited-baseline, profile load-baseline): the "without audit" reference
#   --compare: runs --baseline, then the audited service, and prints how much the audit adds
#     against issue 15's targets: request rate kept >= 85 %, and median latency <= the
#     unaudited median + 2 x the measured mean commit time (the fsync floor; meant for light
#     load, --connections 1)
#
# Starts the release binary `rps-cds serve` on 127.0.0.1 only (so authentication is off by
# the service's own rule), POSTs the request with wrk for a bounded time, prints requests/s and
# latency percentiles, then the service's own audit-write and stage histograms from /metrics,
# and stops the server (and the PostgreSQL it started). Installs wrk from Debian if missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${LOAD_DURATION:-20s}"
THREADS="${LOAD_THREADS:-2}"
CONNECTIONS="${LOAD_CONNECTIONS:-16}"
REQUEST="${LOAD_REQUEST:-$ROOT/examples/patient-view-local-recurrence.json}"
SERVICE="${LOAD_SERVICE:-rps-patient-view}"
PORT="${LOAD_PORT:-18080}"
LOG_LEVEL="${LOAD_LOG_LEVEL:-info}"
USE_PG=0
BASELINE=0
COMPARE=0
ARGS=("$@")
# A port and directory of its own, so the load test never shares a cluster with the storage
# tests. The directory must be reachable by the `postgres` user, hence not under $WORK.
PG_PORT="${LOAD_PG_PORT:-55438}"
PG_DIR="${TMPDIR:-/tmp}/rps-cds-load-pg-$PG_PORT"
# .ci/postgres.sh runs with fsync off (fine for tests); a load test comparing with SQLite's
# synchronous=FULL commits turns it back on unless LOAD_PG_FSYNC=off.
PG_FSYNC="${LOAD_PG_FSYNC:-on}"

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --request) REQUEST="$2"; shift 2 ;;
        --service) SERVICE="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --log-level) LOG_LEVEL="$2"; shift 2 ;;
        --postgres) USE_PG=1; shift ;;
        --baseline) BASELINE=1; shift ;;
        --compare) COMPARE=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "load.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

log() { echo "load.sh: $*" >&2; }

if [ "$COMPARE" -eq 1 ]; then
    # Same options minus --compare, once without audit and once with it, one after the other
    # on the same machine; the ratio is what the issue's targets are about.
    rest=()
    for a in "${ARGS[@]}"; do [ "$a" = --compare ] || rest+=("$a"); done
    base_out="$(bash "$0" "${rest[@]}" --baseline)"
    echo "$base_out"
    audit_out="$(bash "$0" "${rest[@]}")"
    echo "$audit_out"
    field() { grep '^LOAD ' | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    commit_ms="$(echo "$audit_out" | grep 'rps_cds_audit_commit_duration_seconds:' \
        | tr ' ' '\n' | sed -n 's/^mean=//p')"
    awk -v b50="$(echo "$base_out" | field p50_ms)" -v a50="$(echo "$audit_out" | field p50_ms)" \
        -v brps="$(echo "$base_out" | field rps)" -v arps="$(echo "$audit_out" | field rps)" \
        -v commit="${commit_ms:-0}" \
        -v bcpu="$(echo "$base_out" | field server_cpu_us_per_request)" \
        -v acpu="$(echo "$audit_out" | field server_cpu_us_per_request)" 'BEGIN {
        added = (a50 / b50 - 1) * 100; kept = arps / brps * 100; limit = b50 + 2 * commit
        printf "COMPARE p50_ms without=%.2f with=%.2f added=%+.1f%% commit_mean_ms=%.2f (target with <= without + 2 x commit = %.2f: %s); ", b50, a50, added, commit, limit, (a50 <= limit ? "met" : "NOT met")
        printf "rps without=%.1f with=%.1f kept=%.1f%% (target >= 85%%: %s); ", brps, arps, kept, (kept >= 85 ? "met" : "NOT met")
        printf "server_cpu_us_per_request without=%d with=%d audit=%d\n", bcpu, acpu, acpu - bcpu
    }'
    exit 0
fi
BASE="http://127.0.0.1:$PORT"

if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found; installing Debian's package"
    [ "$(id -u)" -eq 0 ] || { log "need root to apt-get install wrk"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends wrk >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends wrk >&2; }
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BASELINE" -eq 1 ]; then
    BIN="${RPS_CDS_BASELINE_BIN:-$TARGET/load-baseline/rps-cds}"
    if [ -z "${RPS_CDS_BASELINE_BIN:-}" ]; then
        log "building the unaudited baseline binary (no-op when up to date)"
        (cd "$ROOT" && cargo build --profile load-baseline --features unaudited-baseline --bin rps-cds >&2)
    fi
else
    BIN="${RPS_CDS_BIN:-$TARGET/release/rps-cds}"
    if [ -z "${RPS_CDS_BIN:-}" ]; then
        log "building the release binary (no-op when up to date)"
        (cd "$ROOT" && cargo build --release --bin rps-cds >&2)
    fi
fi
[ -x "$BIN" ] || { log "no binary at $BIN"; exit 1; }

if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then
    log "something already answers on $BASE; choose another --port"
    exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rps-cds-load.XXXXXX")"
SERVER_PID=""
STARTED_PG=0
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$STARTED_PG" -eq 1 ]; then
        RPS_CDS_PG_PORT="$PG_PORT" RPS_CDS_PG_DIR="$PG_DIR" bash "$ROOT/.ci/postgres.sh" stop || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$USE_PG" -eq 1 ]; then
    if pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
        log "a PostgreSQL already runs on port $PG_PORT; set LOAD_PG_PORT"
        exit 1
    fi
    STARTED_PG=1
    pg_line="$(RPS_CDS_PG_PORT="$PG_PORT" RPS_CDS_PG_DIR="$PG_DIR" bash "$ROOT/.ci/postgres.sh")"
    export RPS_CDS_STORAGE__URL="${pg_line#export RPS_CDS_TEST_POSTGRES_URL=}"
    # The cluster owner is the superuser and local TCP is trusted (see .ci/postgres.sh).
    owner=postgres
    [ "$(id -u)" -eq 0 ] || owner="$(id -un)"
    psql -h 127.0.0.1 -p "$PG_PORT" -U "$owner" -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "ALTER SYSTEM SET fsync = $PG_FSYNC" \
        -c "ALTER SYSTEM SET full_page_writes = $PG_FSYNC" \
        -c "SELECT pg_reload_conf()" >/dev/null
    log "PostgreSQL on port $PG_PORT with fsync=$PG_FSYNC"
fi
if [ "$BASELINE" -eq 1 ]; then
    STORE="none (unaudited baseline build)"
elif [ -n "${RPS_CDS_STORAGE__URL:-}" ]; then
    STORE="PostgreSQL"
    [ "$STARTED_PG" -eq 1 ] && STORE="PostgreSQL(fsync=$PG_FSYNC)"
else
    STORE="SQLite ($WORK/data)"
fi

export RPS_CDS_BIND="127.0.0.1:$PORT"
export RPS_CDS_PUBLIC_BASE_URL="$BASE"
export RPS_CDS_STORAGE__DATA_DIR="$WORK/data"
export RPS_CDS_LOG__LEVEL="$LOG_LEVEL"
log "starting $BIN serve on $BASE, audit on $STORE"
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; log "server exited"; exit 1; }
    sleep 0.5
done
curl -fsS -o /dev/null "$BASE/readyz" || { tail -20 "$WORK/server.log" >&2; log "not ready after 60 s"; exit 1; }

# One call by hand first: the load is only meaningful if it is answered with cards.
status="$(curl -sS -o "$WORK/first.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary @"$REQUEST" "$BASE/cds-services/$SERVICE")"
if [ "$status" != 200 ]; then
    log "first call answered $status:"; cat "$WORK/first.json" >&2; exit 1
fi
cards="$(grep -o '"uuid"' "$WORK/first.json" | wc -l)"
log "first call: 200 with $cards card(s); load: $DURATION, $THREADS threads, $CONNECTIONS connections"

# CPU time of the server process (user + system clock ticks, all its threads) around the run:
# CPU per request, a measure that steal time and the load generator disturb far less than
# the rate does.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SERVER_PID/stat"; }
cpu_before="$(cpu_ticks)"
RPS_CDS_LOAD_BODY="$REQUEST" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency \
    -s "$ROOT/scripts/load/post.lua" "$BASE/cds-services/$SERVICE" >"$WORK/wrk.txt"
cpu_after="$(cpu_ticks)"
summary="$(grep '^LOAD ' "$WORK/wrk.txt" || true)"
[ -n "$summary" ] || { cat "$WORK/wrk.txt" >&2; log "wrk printed no summary"; exit 1; }
requests="$(echo "$summary" | tr ' ' '\n' | sed -n 's/^requests=//p')"
summary="$summary server_cpu_us_per_request=$(awk -v a="$cpu_after" -v b="$cpu_before" \
    -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (a - b) / hz * 1e6 / n }')"

curl -fsS "$BASE/metrics" >"$WORK/metrics.txt"

# Mean and bucket-bounded percentiles of one Prometheus histogram (optional label filter).
histogram() {
    local name="$1" filter="${2:-}"
    awk -v name="$name" -v filter="$filter" '
        function bucket_le(line,   m) { match(line, /le="[^"]*"/); return substr(line, RSTART + 4, RLENGTH - 5) }
        index($0, "#") == 1 { next }
        filter != "" && index($0, filter) == 0 { next }
        index($1, name "_bucket{") == 1 { les[++n] = bucket_le($1); cum[n] = $2 }
        index($1, name "_sum") == 1 { sum = $2 }
        index($1, name "_count") == 1 { count = $2 }
        END {
            if (count == 0) { print "  " name (filter ? " " filter : "") ": no samples"; exit }
            split("0.5 0.9 0.99", qs, " ")
            out = sprintf("  %s%s: n=%d mean=%.3f ms", name, (filter ? " " filter : ""), count, sum / count * 1000)
            for (q = 1; q <= 3; q++) {
                for (i = 1; i <= n; i++) if (cum[i] >= qs[q] * count) break
                out = out sprintf(" p%s<=%s", qs[q] * 100, (les[i] == "+Inf" ? "+Inf" : sprintf("%g ms", les[i] * 1000)))
            }
            print out
        }' "$WORK/metrics.txt"
}

echo "== rps-cds load: $SERVICE, $(basename "$REQUEST"), audit on ${STORE%% *}, log level $LOG_LEVEL, $(nproc) cores"
echo "$summary"
echo "service-side histograms (/metrics; percentiles are bucket upper bounds):"
histogram rps_cds_request_duration_seconds 'status="200"'
histogram rps_cds_audit_write_duration_seconds
histogram rps_cds_audit_commit_duration_seconds
awk '$1 == "rps_cds_audit_batch_size_sum" { s = $2 } $1 == "rps_cds_audit_batch_size_count" { n = $2 }
    END { if (n > 0) printf "  rps_cds_audit_batch_size: commits=%d mean=%.1f records\n", n, s / n }' "$WORK/metrics.txt"
for stage in validation facts rules cards audit; do
    histogram rps_cds_stage_duration_seconds "stage=\"$stage\""
done
