#!/usr/bin/env bash
# Throwaway PostgreSQL for the storage tests.
#
#   eval "$(bash .ci/postgres.sh)"    # install if needed, start, export RPS_CDS_TEST_POSTGRES_URL
#   bash .ci/postgres.sh stop         # stop the cluster and delete its directory
#
# Idempotent: a cluster already running on the port is reused. Only the export line goes to
# stdout; progress goes to stderr. The cluster trusts local TCP connections and runs with
# fsync off: it is for tests only and lives in a temporary directory.
set -euo pipefail

PORT="${RPS_CDS_PG_PORT:-55432}"
DIR="${RPS_CDS_PG_DIR:-${TMPDIR:-/tmp}/rps-cds-pg-$PORT}"
ROLE=rps_cds
DB=rps_cds

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    fi
}

BIN="$(find_bin)"
if [ -z "$BIN" ]; then
    log "PostgreSQL not found; installing Debian's package"
    if [ "$(id -u)" -ne 0 ]; then
        log "need root to install PostgreSQL (apt-get install postgresql)"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    BIN="$(find_bin)"
    [ -n "$BIN" ] || { log "PostgreSQL binaries still missing after install"; exit 1; }
fi

# PostgreSQL refuses to run as root: run the server as the package's `postgres` user (created
# here if the package did not), or as the current user when that is not root.
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER="$(id -un)"
fi

psql_admin() {
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$OWNER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

if [ "${1:-}" = "stop" ]; then
    if [ -f "$DIR/data/PG_VERSION" ]; then
        as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    fi
    rm -rf "$DIR"
    log "stopped"
    exit 0
fi

if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    log "reusing the server already on 127.0.0.1:$PORT"
else
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    [ "$(id -u)" -eq 0 ] && chown "$OWNER" "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        log "initialising a cluster in $DIR/data"
        as_pg "$BIN/initdb" -D "$DIR/data" -U "$OWNER" --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    log "starting on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off \
            -c full_page_writes=off -c max_connections=200" >&2 \
        || { cat "$DIR/server.log" >&2; exit 1; }
fi

# The tests create (and drop) one database per test, hence CREATEDB.
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $ROLE LOGIN CREATEDB"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $ROLE"
fi

echo "export RPS_CDS_TEST_POSTGRES_URL=postgres://$ROLE@127.0.0.1:$PORT/$DB"
