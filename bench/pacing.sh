#!/usr/bin/env bash
# Pacing accuracy (SPEC §10): with `rate_per_second` set, the time from the
# first to the last attempt of N deliveries is within 3 % of the ideal
# (N-1)/rate, for rates from 1/s to 5,000/s. SMS on the outbox transport, so
# the figure measures the engine's pacing, not a provider.
#
# Usage: bench/pacing.sh [RATE...]        (default 1 10 100 1000 2000 5000)
# Prints rate, N, ideal and measured seconds and the error; exit 1 if any
# rate is off by 3 % or more.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${ALLERTA_BIN:-$ROOT/target/release/allerta}
[[ -n ${ALLERTA_BIN:-} ]] || (cd "$ROOT" && cargo build --release --quiet)
RATES=("$@")
[[ ${#RATES[@]} -gt 0 ]] || RATES=(1 10 100 1000 2000 5000)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
printf '%8s %7s %9s %9s %7s\n' rate N ideal_s took_s error
for rate in "${RATES[@]}"; do
    # About 6 s of sending at every rate (at least 6 messages).
    n=$(python3 -c "print(max(6, int($rate * 6) + 1))")
    dir=$work/r$rate
    mkdir -p "$dir/contacts"
    python3 - "$n" >"$dir/contacts/c.csv" <<'PY'
import sys
print("id,name,phone,email,telegram_chat_id,zones,groups,language,channels")
for i in range(1, int(sys.argv[1]) + 1):
    print(f"s{i},Persona {i},+39 347 {i:07d},,,centro,bench,it,")
PY
    cat >"$dir/allerta.toml" <<CONF
[general]
database = "allerta.db"
templates_dir = "$ROOT/templates"
contacts_dir = "contacts"
outbox_dir = "outbox"
sender = "Bench"
sender_id = "bench@example.org"
[zones.centro]
name = "Centro"
[channels.sms]
transport = "outbox"
max_segments = 3
rate_per_second = $rate
CONF
    (cd "$dir" && "$BIN" --config allerta.toml send allerta-meteo --var livello=rosso \
        --var rischio=idraulico --var dalle=ora --all --yes >/dev/null 2>&1)
    span=$(sqlite3 "$dir/allerta.db" "SELECT (MAX(at) - MIN(at)) / 1000.0 FROM attempts")
    python3 - "$rate" "$n" "$span" <<'PY' || fail=1
import sys
rate, n, span = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ideal = (n - 1) / rate
error = (span - ideal) / ideal
print(f"{rate:8.0f} {n:7d} {ideal:9.3f} {span:9.3f} {error:+7.2%}")
sys.exit(0 if abs(error) < 0.03 else 1)
PY
done
exit $fail
