#!/usr/bin/env bash
# Telegram pacing benchmark (SPEC §10): N chats at RATE messages/s through the
# real Bot API transport, against tests/servers/telegram_server.py, a local
# Bot API server that enforces Telegram's limits (RATE/s overall in a sliding
# one-second window, 1/s per chat) with real 429 bodies.
#
# Usage: bench/telegram.sh [N] [RATE]      (default 3000 30)
# Prints elapsed seconds, the ideal N/RATE, the overrun in %, and how many
# 429s the sender provoked. Exit 1 if any delivery is not `sent`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-3000}
RATE=${2:-30}
BIN=${ALLERTA_BIN:-$ROOT/target/release/allerta}
[[ -n ${ALLERTA_BIN:-} ]] || (cd "$ROOT" && cargo build --release --quiet)
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

/usr/bin/python3 "$ROOT/tests/servers/telegram_server.py" --port 0 --token bench:TOKEN \
    --global-limit "$RATE" >"$work/server.out" &
server=$!
for _ in $(seq 100); do grep -q READY "$work/server.out" 2>/dev/null && break; sleep 0.05; done
port=$(awk '/READY/ {print $2}' "$work/server.out")

mkdir -p "$work/contacts"
{
    echo "id,name,phone,email,telegram_chat_id,zones,groups,language,channels"
    for i in $(seq "$N"); do echo "t$i,Persona $i,,,$((200000000 + i)),centro,bench,it,"; done
} >"$work/contacts/c.csv"
cat >"$work/allerta.toml" <<CONF
[general]
database = "allerta.db"
templates_dir = "$ROOT/templates"
contacts_dir = "contacts"
sender = "Bench"
sender_id = "bench@example.org"
[zones.centro]
name = "Centro"
[channels.telegram]
transport = "bot-api"
api_url = "http://127.0.0.1:$port"
token = "bench:TOKEN"
rate_per_second = $RATE
CONF

start=$(date +%s.%N)
"$BIN" --config "$work/allerta.toml" --json send allerta-meteo --var livello=giallo \
    --var rischio=vento --var "dalle=ore 14" --group bench --channel telegram --yes >"$work/out.json"
end=$(date +%s.%N)
curl -s "http://127.0.0.1:$port/_test/sent" >"$work/stats.json"
python3 - "$work/out.json" "$start" "$end" "$N" "$RATE" "$work/stats.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
start, end, n, rate = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
stats = json.load(open(sys.argv[6]))
tg = out["channels"]["telegram"]
elapsed, ideal = end - start, n / rate
print(f"telegram: {n} chats at {rate:g}/s: {elapsed:.1f} s (ideal {ideal:.1f} s, {100 * (elapsed / ideal - 1):+.1f} %), "
      f"sent {tg['sent']}, failed {tg['failed']}, 429 provoked: {stats.get('rate_limited')}")
sys.exit(0 if tg["sent"] == n else 1)
PY
