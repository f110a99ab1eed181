#!/usr/bin/env bash
# Reproducible end-to-end benchmark of `allerta send` (SPEC §10).
#
# Usage: bench/run.sh [--apprise] [--keep] [N ...]      (default N: 10000 100000)
#
# For each N it generates N synthetic contacts (zone `centro`, group `bench`,
# one email each) and runs the release binary twice:
#   outbox  email channel on the outbox transport: engine + SQLite ledger alone
#   smtp    email channel over SMTP ($BENCH_SMTP_CONNECTIONS connections, default 32, no rate limit) to
#           bench/smtp-sink, a fast counting SMTP sink on 127.0.0.1
# and prints wall time, deliveries/s, peak RSS (/usr/bin/time -v) and (smtp)
# the time from command start to the first MAIL at the sink of each run.
# A run is FAILED unless it exits 0, `--json` reports all N deliveries `sent`
# and none failed, the ledger agrees, and (smtp) the sink received N messages.
# The sink's own ceiling is measured first, with smtp-load (bench/smtp-sink).
#
#   --apprise  also time Apprise (pip, in a venv under /tmp) sending 1,000
#              emails to the same sink, for SPEC §10's ">= 20x Apprise"
#   --keep     keep the temporary directory (configs, databases, outboxes, logs)
#   --warm     before each timed run, an untimed send to nobody validates the
#              contact files into the ledger's registry, so the run measures
#              planning from a warm registry (the usual case: lists change
#              rarely, alerts are sent from them many times)
#
# Needs: cargo, /usr/bin/time (apt `time`), sqlite3 (apt `sqlite3`); with
# --apprise also python3 with venv. Missing apt packages are installed when
# running as root. ALLERTA_BIN=PATH uses that binary instead of building one.
# Exit status: 0 when every run passed its checks, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${ALLERTA_BIN:-$ROOT/target/release/allerta}
SINK_DIR=$ROOT/bench/smtp-sink
SINK_TARGET=${SINK_TARGET_DIR:-$ROOT/target/smtp-sink}
SINK=$SINK_TARGET/release/smtp-sink
LOAD=$SINK_TARGET/release/smtp-load
APPRISE_VENV=${APPRISE_VENV:-/tmp/allerta-bench-apprise-venv}
APPRISE_N=1000
SINK_ALONE_N=100000

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

do_apprise=0
keep=0
warm=0
sizes=()
for arg in "$@"; do
    case $arg in
        --apprise) do_apprise=1 ;;
        --keep) keep=1 ;;
        --warm) warm=1 ;;
        -h | --help) usage; exit 0 ;;
        *[!0-9]* | '') echo "bench/run.sh: bad argument '$arg'" >&2; usage >&2; exit 2 ;;
        *) sizes+=("$arg") ;;
    esac
done
[[ ${#sizes[@]} -gt 0 ]] || sizes=(10000 100000)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# ---- tools -------------------------------------------------------------------
need_pkgs=()
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)
if ((do_apprise)) && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    need_pkgs+=(python3 python3-venv)
fi
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || die "missing packages: ${need_pkgs[*]} (apt-get install them)"
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
command -v cargo >/dev/null || die "cargo not found"

# ---- build -------------------------------------------------------------------
if [[ -z ${ALLERTA_BIN:-} ]]; then
    log "building allerta (release)"
    (cd "$ROOT" && cargo build --release) >&2
fi
[[ -x $BIN ]] || die "$BIN was not built"
log "building smtp-sink (release)"
CARGO_TARGET_DIR=$SINK_TARGET cargo build --release --manifest-path "$SINK_DIR/Cargo.toml" >&2

WORK=$(mktemp -d /tmp/allerta-bench.XXXXXX)
sink_pid=
sink_port=
sink_count=
sink_first_mail=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n $sink_pid ]]; then kill -TERM "$sink_pid" 2>/dev/null || true; fi
    if ((keep)); then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- sink helpers --------------------------------------------------------------
# start_sink NAME: starts a sink, sets sink_pid and sink_port; output in $WORK/NAME.sink
start_sink() {
    local out=$WORK/$1.sink
    "$SINK" 0 >"$out" 2>"$out.err" &
    sink_pid=$!
    local i
    for ((i = 0; i < 200; i++)); do
        if [[ -s $out ]] && read -r word sink_port <"$out" && [[ $word == READY ]]; then
            return 0
        fi
        kill -0 "$sink_pid" 2>/dev/null || die "smtp-sink died: $(cat "$out.err")"
        sleep 0.025
    done
    die "smtp-sink not ready after 5 s"
}
# stop_sink NAME: stops it and sets sink_count to the messages it received
stop_sink() {
    local out=$WORK/$1.sink
    kill -TERM "$sink_pid"
    wait "$sink_pid" || die "smtp-sink exited with an error: $(cat "$out.err")"
    sink_pid=
    sink_count=$(awk '$1 == "COUNT" { print $2 }' "$out")
    sink_first_mail=$(awk '{ for (i = 1; i < NF; i++) if ($i == "FIRST_MAIL_UNIX") print $(i + 1) }' "$out")
}

# ---- the sink alone --------------------------------------------------------------
log "measuring smtp-sink alone ($SINK_ALONE_N messages, 8 connections)"
start_sink alone
load_out=$("$LOAD" "$sink_port" --messages "$SINK_ALONE_N" --connections 8) || die "smtp-load failed"
stop_sink alone
[[ $sink_count == "$SINK_ALONE_N" ]] || die "sink counted $sink_count of $SINK_ALONE_N messages"
sink_rate=$(awk '{ for (i = 1; i < NF; i++) if ($i == "MSG_PER_S") print $(i + 1) }' <<<"$load_out")
log "smtp-sink alone: $sink_rate msg/s"

# ---- contacts and config -----------------------------------------------------------
gen_contacts() { # N FILE
    awk -v n="$1" 'BEGIN {
        print "id,name,phone,email,telegram_chat_id,zones,groups,language,channels"
        for (i = 1; i <= n; i++)
            printf "b%d,Utente Bench %d,+39333%07d,user%d@example.org,,centro,bench,it,\n", i, i, i, i
    }' >"$2"
}

write_config() { # DIR CONTACTS_DIR MODE [PORT]
    local dir=$1 contacts=$2 mode=$3 port=${4:-}
    {
        cat <<EOF
# generated by bench/run.sh
[general]
database = "$dir/allerta.db"
templates_dir = "$ROOT/templates"
contacts_dir = "$contacts"
outbox_dir = "$dir/outbox"
sender = "Comune di Montelupo Fiorentino - Protezione Civile"
sender_id = "protezionecivile@comune.example.it"
default_language = "it"
default_region = "IT"
timezone = "Europe/Rome"

[zones.centro]
name = "Montelupo centro"

[channels.email]
EOF
        if [[ $mode == outbox ]]; then
            echo 'transport = "outbox"'
        else
            echo 'transport = "smtp"'
            echo "url = \"smtp://127.0.0.1:$port\""
            echo "max_connections = ${BENCH_SMTP_CONNECTIONS:-32}"
        fi
        cat <<'EOF'
from = "Protezione Civile <protezionecivile@comune.example.it>"
unsubscribe_url = "https://www.comune.example.it/allerta/cancellami?t={token}"
EOF
    } >"$dir/allerta.toml"
}

# json_get FILE PATH: a value from a JSON file (sqlite3's JSON functions; no python)
json_get() {
    sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2');" 2>/dev/null || true
}

# ---- one run ---------------------------------------------------------------------
results=()
failed=0
best_smtp_rate=

run_one() { # N MODE CONTACTS_DIR
    local n=$1 mode=$2 contacts=$3
    local dir=$WORK/n$n-$mode
    mkdir -p "$dir"
    local port=
    if [[ $mode == smtp ]]; then
        start_sink "n$n"
        port=$sink_port
    fi
    write_config "$dir" "$contacts" "$mode" "$port"

    if ((warm)); then
        "$BIN" --config "$dir/allerta.toml" --json send allerta-meteo \
            --var livello=arancione --var rischio=idraulico --var dalle="ore 14" \
            --group bench-warm-up-nobody --channel email --yes >/dev/null 2>&1 || true
    fi
    log "N=$n $mode: allerta send"
    local rc=0 t0 t1
    t0=$EPOCHREALTIME
    /usr/bin/time -v -o "$dir/time.txt" \
        "$BIN" --config "$dir/allerta.toml" --json send allerta-meteo \
        --var livello=arancione --var rischio=idraulico --var dalle="ore 14" \
        --group bench --channel email --yes \
        >"$dir/out.json" 2>"$dir/stderr.log" || rc=$?
    t1=$EPOCHREALTIME

    local received='' first_ms=-
    if [[ $mode == smtp ]]; then
        stop_sink "n$n"
        received=$sink_count
        # command start -> first MAIL command at the sink (SPEC §10: < 100 ms)
        first_ms=$(awk -v a="$t0" -v f="${sink_first_mail:-0}" \
            'BEGIN { if (f > 0) printf "%.0f", (f - a) * 1000; else print "-" }')
    fi

    local secs rss_kb rss_mb rate
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/time.txt")
    rss_mb=$(awk -v k="${rss_kb:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')

    # --- checks
    local problems=()
    ((rc == 0)) || problems+=("exit status $rc")
    local sent failed_n
    sent=$(json_get "$dir/out.json" '$.channels.email.sent')
    failed_n=$(json_get "$dir/out.json" '$.channels.email.failed')
    [[ $sent == "$n" ]] || problems+=("json: email.sent=${sent:-?}")
    [[ ${failed_n:-0} == 0 ]] || problems+=("json: email.failed=$failed_n")
    if [[ -f $dir/allerta.db ]] &&
        sqlite3 "$dir/allerta.db" "SELECT 1 FROM deliveries LIMIT 0" >/dev/null 2>&1; then
        local ledger_sent ledger_total
        ledger_sent=$(sqlite3 "$dir/allerta.db" \
            "SELECT count(*) FROM deliveries WHERE channel = 'email' AND state = 'sent'")
        ledger_total=$(sqlite3 "$dir/allerta.db" \
            "SELECT count(*) FROM deliveries WHERE channel = 'email'")
        [[ $ledger_sent == "$n" && $ledger_total == "$n" ]] ||
            problems+=("ledger: $ledger_sent sent of $ledger_total rows")
    else
        problems+=("ledger: no deliveries table in $dir/allerta.db")
    fi
    if [[ $mode == outbox ]]; then
        local lines=0
        [[ -f $dir/outbox/email.jsonl ]] && lines=$(wc -l <"$dir/outbox/email.jsonl")
        [[ $lines == "$n" ]] || problems+=("outbox: $lines lines")
    else
        [[ $received == "$n" ]] || problems+=("sink received ${received:-?}")
    fi

    local verdict=ok
    if [[ ${#problems[@]} -gt 0 ]]; then
        verdict=FAILED
        failed=1
        log "N=$n $mode FAILED: ${problems[*]}"
        log "stderr (last lines):"
        tail -n 5 "$dir/stderr.log" >&2 || true
    fi
    if [[ $mode == smtp && $verdict == ok ]]; then best_smtp_rate=$rate; fi
    results+=("$(printf '%8s  %-7s %9s %14s %13s %14s  %s' "$n" "$mode" "$secs" "$rate" "$rss_mb" "$first_ms" "$verdict")")
    log "N=$n $mode: ${secs}s, $rate deliveries/s, ${rss_mb} MB peak RSS, $verdict"
    if ((!keep)); then rm -rf "$dir/outbox"; fi
}

for n in "${sizes[@]}"; do
    contacts=$WORK/contacts-$n
    mkdir -p "$contacts"
    log "N=$n: generating contacts"
    gen_contacts "$n" "$contacts/bench.csv"
    run_one "$n" outbox "$contacts"
    run_one "$n" smtp "$contacts"
    if ((!keep)); then rm -rf "$contacts"; fi
done

# ---- Apprise ---------------------------------------------------------------------------
apprise_lines=()
apprise_best=
if ((do_apprise)); then
    if [[ ! -x $APPRISE_VENV/bin/python ]] || ! "$APPRISE_VENV/bin/python" -c 'import apprise' 2>/dev/null; then
        log "installing apprise into $APPRISE_VENV"
        python3 -m venv "$APPRISE_VENV"
        "$APPRISE_VENV/bin/pip" install -q apprise >&2
    fi
    apprise_version=$("$APPRISE_VENV/bin/python" -c 'import apprise; print(apprise.__version__)')
    for amode in targets urls; do
        log "Apprise $apprise_version ($amode): $APPRISE_N emails"
        start_sink "apprise-$amode"
        aout=$("$APPRISE_VENV/bin/python" "$ROOT/bench/apprise_bench.py" "$sink_port" "$APPRISE_N" --mode "$amode" 2>"$WORK/apprise-$amode.err") || true
        stop_sink "apprise-$amode"
        got=$sink_count
        arate=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^msg_per_s=/) { sub(/msg_per_s=/, "", $i); print $i } }' <<<"$aout")
        asecs=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^seconds=/) { sub(/seconds=/, "", $i); print $i } }' <<<"$aout")
        if [[ $got != "$APPRISE_N" || -z $arate ]]; then
            apprise_lines+=("Apprise $apprise_version $amode: FAILED (sink got ${got:-0}; $(tail -n 1 "$WORK/apprise-$amode.err" 2>/dev/null))")
            continue
        fi
        apprise_lines+=("Apprise $apprise_version, $APPRISE_N emails, mode $amode: ${asecs}s, $arate msg/s")
        if [[ -z $apprise_best ]] || ((arate > apprise_best)); then apprise_best=$arate; fi
    done
fi

# ---- report ------------------------------------------------------------------------------
echo
echo "allerta benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
printf '%8s  %-7s %9s %14s %13s %14s  %s\n' N mode seconds deliveries/s "peak RSS MB" "first msg ms" check
for line in "${results[@]}"; do echo "$line"; done
echo "smtp-sink alone (smtp-load, 8 connections, $SINK_ALONE_N messages): $sink_rate msg/s"
for line in "${apprise_lines[@]}"; do echo "$line"; done
if [[ -n $apprise_best && -n $best_smtp_rate ]]; then
    awk -v a="$best_smtp_rate" -v b="$apprise_best" \
        'BEGIN { printf "allerta smtp (largest N) / best Apprise: %.1fx (SPEC §10 target: >= 20x)\n", a / b }'
fi
echo "SPEC §10 targets at N=100000: >= 5000 deliveries/s end to end, peak RSS < 150 MB;"
echo "  first msg ms = command start to the sink's first MAIL (target < 100 ms; includes writing the plan)"
exit "$failed"
