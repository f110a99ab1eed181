#!/usr/bin/env bash
# SMS through the HTTP gateway transport to a fast loopback endpoint (SPEC
# §10): nginx answers every request with "OK id=<request id>", so the
# figure measures allerta (engine, ledger, HTTP client), not a gateway.
#
# Usage: bench/sms-http.sh [N] [CONNECTIONS]      (default 100000 32)
# Prints seconds, deliveries/s and peak RSS; exit 1 unless all N are `sent`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-100000}
CONN=${2:-32}
BIN=${ALLERTA_BIN:-$ROOT/target/release/allerta}
[[ -n ${ALLERTA_BIN:-} ]] || (cd "$ROOT" && cargo build --release --quiet)
work=$(mktemp -d)
trap '[[ -f $work/nginx.pid ]] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location /send { default_type text/plain; return 200 "OK id=\$request_id"; } }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"

mkdir -p "$work/contacts"
python3 - "$N" >"$work/contacts/c.csv" <<'PY'
import sys
print("id,name,phone,email,telegram_chat_id,zones,groups,language,channels")
for i in range(1, int(sys.argv[1]) + 1):
    print(f"s{i},Persona {i},+39 347 {i:07d},,,centro,bench,it,")
PY
cat >"$work/allerta.toml" <<CONF
[general]
database = "allerta.db"
templates_dir = "$ROOT/templates"
contacts_dir = "contacts"
sender = "Bench"
sender_id = "bench@example.org"
[zones.centro]
name = "Centro"
[channels.sms]
transport = "http"
url = "http://127.0.0.1:$port/send"
sender = "ComuneML"
max_segments = 3
max_connections = $CONN
[channels.sms.http]
method = "POST"
auth = "none"
body = "form"
success_status = [200]
success_body_regex = "^OK"
provider_id_regex = "id=([0-9a-f]+)"
[channels.sms.http.fields]
to = "{{ to_digits }}"
text = "{{ text }}"
ref = "{{ reference }}"
CONF

/usr/bin/time -f "%e %M" -o "$work/time" "$BIN" --config "$work/allerta.toml" --json send allerta-meteo \
    --var livello=giallo --var rischio=vento --var "dalle=ore 14" --group bench --channel sms --yes >"$work/out.json"
read -r secs kb <"$work/time"
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["channels"]["sms"]["sent"])' "$work/out.json")
python3 -c "import sys; n,s,k,ok=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),sys.argv[4]; print(f'sms/http: {n} deliveries, {s:.2f} s, {n/s:.0f} deliveries/s, peak RSS {k/1024:.1f} MB, {ok} sent')" "$N" "$secs" "$kb" "$sent"
[[ $sent == "$N" ]]
