#!/usr/bin/env bash
# The PostgreSQL ledger beside SQLite (SPEC §18, issue 17): the same
# N-recipient send (default 100,000; email on the outbox transport, so the
# figure is the engine and its ledger, not a provider) run three times with
# the release binary:
#   sqlite     one `allerta send`, the ledger a SQLite file
#   pg-1       one `allerta send`, the ledger a PostgreSQL database
#   pg-2       the same send plus an `allerta resume ID` started as soon as
#              the alert exists: two workers share the alert's deliveries
#              (per-delivery leases); each has its own outbox directory
# and prints, side by side, wall time, deliveries/s and the time from the
# command's start to the first message (the earliest attempt the ledger
# recorded: the outbox write of the first delivery).
#
# Usage: bench/postgres.sh [--keep] [--sqlite-only] [N]
#
#   --keep          keep the temporary directory (configs, outboxes, logs,
#                   and the throwaway cluster's data directory)
#   --sqlite-only   skip the PostgreSQL runs (checks the SQLite half and
#                   the script itself on a binary without PostgreSQL)
#
# The cluster: by default a throwaway one — initdb (as the `postgres` user
# through runuser when run as root: initdb refuses root) in a temporary
# directory, on a free port of 127.0.0.1, SCRAM password over TCP, fsync on
# (the ledger's durability is part of the figure). Or an existing server:
#   BENCH_PG_URL=postgres://user@host:port/postgres  BENCH_PG_PASSWORD=...
# whose user may CREATE DATABASE: every run gets a fresh database
# (allerta_bench_<pid>_<run>), dropped afterwards unless --keep.
#
# A run is FAILED unless every process exits 0, `status --json` reports all
# N deliveries sent and none failed, the ledger (sqlite3 / psql) has N rows
# all `sent`, the outboxes hold N lines with no address twice, and (pg-2)
# each worker sent a share. The script exits 1 if any run failed.
#
# Needs: cargo, sqlite3 (apt `sqlite3`) and, unless --sqlite-only,
# PostgreSQL's server and psql (apt `postgresql`). ALLERTA_BIN=PATH uses
# that binary instead of building one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${ALLERTA_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/allerta}
PASSWORD_ENV=BENCH_PG_PASSWORD

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/postgres.sh: %s\n' "$*" >&2; exit 1; }

keep=0
sqlite_only=0
n=100000
for arg in "$@"; do
    case $arg in
        --keep) keep=1 ;;
        --sqlite-only) sqlite_only=1 ;;
        -h | --help) usage; exit 0 ;;
        *[!0-9]* | '') echo "bench/postgres.sh: bad argument '$arg'" >&2; usage >&2; exit 2 ;;
        *) n=$arg ;;
    esac
done

# ---- tools -------------------------------------------------------------------
command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install sqlite3)"
PG_BIN=
if ((!sqlite_only)); then
    PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [[ -z $PG_BIN ]]; then
        command -v psql >/dev/null || die "PostgreSQL not found (apt-get install postgresql)"
        PG_BIN=$(dirname "$(command -v psql)")
    fi
    [[ -x $PG_BIN/psql ]] || die "no psql in $PG_BIN"
    if [[ -z ${BENCH_PG_URL:-} ]]; then
        [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] ||
            die "no initdb/pg_ctl in $PG_BIN (apt-get install postgresql, or set BENCH_PG_URL)"
    fi
fi

# ---- build -------------------------------------------------------------------
if [[ -z ${ALLERTA_BIN:-} ]]; then
    log "building allerta (release)"
    (cd "$ROOT" && cargo build --release --locked) >&2
fi
[[ -x $BIN ]] || die "$BIN was not built"

WORK=$(mktemp -d /tmp/allerta-bench-pg.XXXXXX)
chmod 0755 "$WORK"
cluster_dir=
created_dbs=()
worker_pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local pid
    for pid in "${worker_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if ((!keep)) && [[ -n ${BENCH_PG_URL:-} ]]; then
        local db
        for db in "${created_dbs[@]}"; do
            pg_admin "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
        done
    fi
    if [[ -n $cluster_dir ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$cluster_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if ((keep)); then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# as_postgres CMD...: runs CMD as the postgres user when we are root
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the cluster ---------------------------------------------------------------
ADMIN_URL=
if ((!sqlite_only)); then
    if [[ -n ${BENCH_PG_URL:-} ]]; then
        ADMIN_URL=$BENCH_PG_URL
        [[ $ADMIN_URL =~ ^postgres(ql)?://[^/]+/[^/?]+ ]] ||
            die "BENCH_PG_URL must name a database: postgres://user@host:port/postgres"
        [[ -n ${BENCH_PG_PASSWORD:-} ]] || die "BENCH_PG_URL needs BENCH_PG_PASSWORD"
        log "using the PostgreSQL server of BENCH_PG_URL"
    else
        cluster_dir=$WORK/cluster
        mkdir -p "$cluster_dir"
        BENCH_PG_PASSWORD="bench-$RANDOM-$RANDOM-$RANDOM"
        printf '%s' "$BENCH_PG_PASSWORD" >"$cluster_dir/pwfile"
        if [[ $(id -u) -eq 0 ]]; then chown -R postgres: "$cluster_dir"; fi
        log "initdb (throwaway cluster in $cluster_dir)"
        (cd "$cluster_dir" && as_postgres "$PG_BIN/initdb" -D "$cluster_dir/data" -U allerta \
            --pwfile "$cluster_dir/pwfile" --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C >"$cluster_dir/initdb.log" 2>&1) ||
            die "initdb failed: $(tail -n 5 "$cluster_dir/initdb.log")"
        started=0
        for _ in 1 2 3 4 5; do
            port=$(free_port)
            if (cd "$cluster_dir" && as_postgres "$PG_BIN/pg_ctl" -D "$cluster_dir/data" \
                -l "$cluster_dir/log" -w -t 30 \
                -o "-k $cluster_dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=100" \
                start >/dev/null); then
                started=1
                break
            fi
        done
        ((started)) || die "pg_ctl start failed: $(tail -n 5 "$cluster_dir/log")"
        ADMIN_URL="postgres://allerta@127.0.0.1:$port/postgres?sslmode=disable"
        log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$port"
    fi
    export BENCH_PG_PASSWORD
fi

# pg_admin SQL: runs SQL on the admin URL's database
pg_admin() {
    PGPASSWORD=$BENCH_PG_PASSWORD "$PG_BIN/psql" "$ADMIN_URL" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}
# pg_sql URL SQL: one query's rows on a run's database
pg_sql() {
    PGPASSWORD=$BENCH_PG_PASSWORD "$PG_BIN/psql" "$1" -X -A -t -q -v ON_ERROR_STOP=1 -c "$2"
}
# db_url NAME: the admin URL with another database
db_url() {
    local base=${ADMIN_URL%%\?*} query=
    [[ $ADMIN_URL == *\?* ]] && query="?${ADMIN_URL#*\?}"
    printf '%s/%s%s' "${base%/*}" "$1" "$query"
}
if ((!sqlite_only)); then
    [[ $(pg_admin "SELECT 1") == 1 ]] || die "cannot query PostgreSQL at the admin URL"
fi

# ---- contacts and configs -------------------------------------------------------
contacts=$WORK/contacts
mkdir -p "$contacts"
log "N=$n: generating contacts"
awk -v n="$n" 'BEGIN {
    print "id,name,phone,email,telegram_chat_id,zones,groups,language,channels"
    for (i = 1; i <= n; i++)
        printf "b%d,Utente Bench %d,+39333%07d,user%d@example.org,,centro,bench,it,\n", i, i, i, i
}' >"$contacts/bench.csv"

write_config() { # FILE DATABASE_LINES OUTBOX_DIR
    cat >"$1" <<EOF
# generated by bench/postgres.sh
[general]
$2
templates_dir = "$ROOT/templates"
contacts_dir = "$contacts"
outbox_dir = "$3"
sender = "Comune di Montelupo Fiorentino - Protezione Civile"
sender_id = "protezionecivile@comune.example.it"
default_language = "it"
default_region = "IT"
timezone = "Europe/Rome"

[zones.centro]
name = "Montelupo centro"

[channels.email]
transport = "outbox"
from = "Protezione Civile <protezionecivile@comune.example.it>"
unsubscribe_url = "https://www.comune.example.it/allerta/cancellami?t={token}"
EOF
}

SEND_ARGS=(send allerta-meteo --var livello=arancione --var rischio=idraulico
    --var dalle="ore 14" --group bench --channel email --yes)

# json_get FILE PATH: a value from a JSON file (sqlite3's JSON functions; no python)
json_get() {
    sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2');" 2>/dev/null || true
}

now_ms() { awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.0f", t * 1000 }'; }

# outbox_checks DIR...: appends problems about the outboxes of these dirs
outbox_checks() {
    local total=0 lines d dup
    for d in "$@"; do
        lines=0
        [[ -f $d/email.jsonl ]] && lines=$(wc -l <"$d/email.jsonl")
        total=$((total + lines))
    done
    [[ $total == "$n" ]] || problems+=("outbox: $total lines of $n")
    dup=$({ cat "${@/%//email.jsonl}" 2>/dev/null || true; } |
        { grep -o '"to":"[^"]*"' || true; } | sort | uniq -d | wc -l)
    [[ $dup == 0 ]] || problems+=("outbox: $dup addresses sent twice")
}

results=()
failed=0

# report NAME WORKERS SECS FIRST_MS: records one run's line and verdict
report() {
    local name=$1 workers=$2 secs=$3 first_ms=$4 rate verdict=ok
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    if [[ ${#problems[@]} -gt 0 ]]; then
        verdict="FAILED: ${problems[*]}"
        rate=-
        failed=1
        log "$name FAILED: ${problems[*]}"
    fi
    results+=("$(printf '%-8s %7s %9s %14s %14s  %s' "$name" "$workers" "$secs" "$rate" "$first_ms" "$verdict")")
    log "$name: ${secs}s, $rate deliveries/s, first message after $first_ms ms, $verdict"
}

# ---- sqlite ------------------------------------------------------------------------
run_sqlite() {
    local dir=$WORK/sqlite
    mkdir -p "$dir"
    write_config "$dir/allerta.toml" "database = \"$dir/allerta.db\"" "$dir/outbox"
    problems=()
    log "sqlite: allerta send to $n"
    local rc=0 t0 t1
    t0=$(now_ms)
    "$BIN" --config "$dir/allerta.toml" --json "${SEND_ARGS[@]}" >"$dir/out.json" 2>"$dir/stderr.log" || rc=$?
    t1=$(now_ms)
    ((rc == 0)) || problems+=("send exit $rc: $(tail -n 1 "$dir/stderr.log")")
    local sent failed_n
    sent=$(json_get "$dir/out.json" '$.channels.email.sent')
    failed_n=$(json_get "$dir/out.json" '$.channels.email.failed')
    [[ $sent == "$n" ]] || problems+=("json: email.sent=${sent:-?}")
    [[ ${failed_n:-0} == 0 ]] || problems+=("json: email.failed=$failed_n")
    local first=-
    if [[ -f $dir/allerta.db ]] && sqlite3 "$dir/allerta.db" "SELECT 1 FROM deliveries LIMIT 0" >/dev/null 2>&1; then
        local row
        row=$(sqlite3 "$dir/allerta.db" "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'sent') FROM deliveries" || true)
        [[ $row == "$n $n" ]] || problems+=("ledger: rows/sent = $row")
        local at
        at=$(sqlite3 "$dir/allerta.db" "SELECT min(at) FROM attempts" || true)
        [[ -n $at ]] && first=$((at - t0))
    else
        problems+=("ledger: no deliveries table in $dir/allerta.db")
    fi
    outbox_checks "$dir/outbox"
    report sqlite 1 "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')" "$first"
    if ((!keep)); then rm -rf "$dir/outbox"; fi
}

# ---- postgres -------------------------------------------------------------------------
run_pg() { # WORKERS
    local workers=$1 name=pg-$1
    local dir=$WORK/$name db=allerta_bench_$$_$1
    mkdir -p "$dir"
    problems=()
    # As docs/postgresql.md creates it: UTF-8, C locale, from template0.
    pg_admin "CREATE DATABASE $db ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" ||
        die "CREATE DATABASE $db failed"
    created_dbs+=("$db")
    local url
    url=$(db_url "$db")
    local dblines="database = \"$url\"
database_password_env = \"$PASSWORD_ENV\""
    write_config "$dir/allerta.toml" "$dblines" "$dir/outbox"
    write_config "$dir/allerta-b.toml" "$dblines" "$dir/outbox-b"

    if ((workers > 1)); then
        log "$name: allerta send to $n, plus allerta resume ID as soon as the alert exists"
    else
        log "$name: allerta send to $n"
    fi
    local t0 t1 rc=0 rc_b=0 pid_a pid_b=
    t0=$(now_ms)
    "$BIN" --config "$dir/allerta.toml" --json "${SEND_ARGS[@]}" >"$dir/out.json" 2>"$dir/stderr.log" &
    pid_a=$!
    worker_pids+=("$pid_a")
    local id=
    if ((workers > 1)); then
        # The second worker joins as soon as the alert is in the ledger.
        local i
        for ((i = 0; i < 6000; i++)); do
            id=$(pg_sql "$url" "SELECT id FROM alerts LIMIT 1" 2>/dev/null || true)
            [[ -n $id ]] && break
            kill -0 "$pid_a" 2>/dev/null || break
            sleep 0.01
        done
        if [[ -n $id ]]; then
            "$BIN" --config "$dir/allerta-b.toml" --json resume "$id" --yes \
                >"$dir/out-b.json" 2>"$dir/stderr-b.log" &
            pid_b=$!
            worker_pids+=("$pid_b")
        else
            problems+=("no alert in the ledger to join: $(tail -n 1 "$dir/stderr.log")")
        fi
    fi
    wait "$pid_a" || rc=$?
    if [[ -n $pid_b ]]; then wait "$pid_b" || rc_b=$?; fi
    t1=$(now_ms)
    worker_pids=()
    ((rc == 0)) || problems+=("send exit $rc: $(tail -n 1 "$dir/stderr.log")")
    ((rc_b == 0)) || problems+=("resume exit $rc_b: $(tail -n 1 "$dir/stderr-b.log")")

    local first=-
    if [[ -z $id ]]; then id=$(pg_sql "$url" "SELECT id FROM alerts LIMIT 1" 2>/dev/null || true); fi
    if [[ -n $id ]]; then
        # The whole alert's counts, whoever sent them.
        "$BIN" --config "$dir/allerta.toml" --json status "$id" >"$dir/status.json" 2>>"$dir/stderr.log" ||
            problems+=("status exit $?")
        local sent failed_n
        sent=$(json_get "$dir/status.json" '$.channels.email.sent')
        failed_n=$(json_get "$dir/status.json" '$.channels.email.failed')
        [[ $sent == "$n" ]] || problems+=("json: email.sent=${sent:-?}")
        [[ ${failed_n:-0} == 0 ]] || problems+=("json: email.failed=$failed_n")
        local row at
        row=$(pg_sql "$url" "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'sent') FROM deliveries" || true)
        [[ $row == "$n $n" ]] || problems+=("ledger: rows/sent = $row")
        at=$(pg_sql "$url" "SELECT min(at) FROM attempts" || true)
        [[ -n $at ]] && first=$((at - t0))
    else
        problems+=("ledger: no alert")
    fi
    if ((workers > 1)); then
        outbox_checks "$dir/outbox" "$dir/outbox-b"
        local a=0 b=0
        [[ -f $dir/outbox/email.jsonl ]] && a=$(wc -l <"$dir/outbox/email.jsonl")
        [[ -f $dir/outbox-b/email.jsonl ]] && b=$(wc -l <"$dir/outbox-b/email.jsonl")
        ((a > 0 && b > 0)) || problems+=("shares: send $a, resume $b")
        log "$name: send sent $a, resume sent $b"
    else
        outbox_checks "$dir/outbox"
    fi
    report "$name" "$workers" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')" "$first"
    if ((!keep)); then rm -rf "$dir/outbox" "$dir/outbox-b"; fi
}

run_sqlite
if ((!sqlite_only)); then
    run_pg 1
    run_pg 2
fi

# ---- report ------------------------------------------------------------------------------
echo
echo "allerta ledgers, $n recipients (email, outbox transport) — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
printf '%-8s %7s %9s %14s %14s  %s\n' ledger workers seconds deliveries/s "first msg ms" check
for line in "${results[@]}"; do echo "$line"; done
echo "first msg ms = command start to the earliest attempt in the ledger (the first outbox write; includes opening the ledger and planning)"
echo "pg-2 seconds = send start to the end of both workers; the database runs on the same machine as the workers"
exit "$failed"
