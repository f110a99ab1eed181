#!/usr/bin/env bash
# Real-browser check of the banner widget and the nginx snippet.
# Needs: nginx chromium fonts-noto-color-emoji python3 curl (Debian packages).
# Usage: web/check.sh [OUT_DIR]   (screenshots land in OUT_DIR, default a temp dir)
# Serves fixtures + example.html with a throwaway nginx on 127.0.0.1, runs
# headless Chromium against them, stops nginx at the end.
set -u
WEB=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/allerta-web.XXXXXX)
OUT=${1:-$(mktemp -d /tmp/allerta-shots.XXXXXX)}
mkdir -p "$OUT" "$T/site" "$T/public/cap" "$T/logs"
chmod 755 "$T"   # nginx workers do not run as root
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(port); APORT=$(port)
BASE=http://127.0.0.1:$PORT
PASS=0; FAIL=0
ok() { if "$@"; then PASS=$((PASS+1)); else FAIL=$((FAIL+1)); echo "FAIL: ${CHECK:-?}" >&2; fi; }
has() { CHECK="$1 contains $2"; ok grep -qF -- "$2" "$T/$1.dom"; }
hasnt() { CHECK="$1 lacks $2"; ok bash -c '! grep -qF -- "$1" "$2"' _ "$2" "$T/$1.dom"; }

# --- fixtures: alerts relative to the current clock ------------------------
python3 - "$T" "$BASE" "$APORT" <<'EOF'
import json, sys, datetime as dt
T, base, aport = sys.argv[1], sys.argv[2], sys.argv[3]
tz = dt.timezone(dt.timedelta(hours=1))
now = dt.datetime.now(tz).replace(microsecond=0)
iso = lambda d: d.isoformat()
def alert(id, sev, headline, status="Actual", expires=dt.timedelta(hours=6), **kw):
    a = {"id": id, "status": status, "msg_type": "Alert", "severity": sev,
         "event": "Allerta meteo", "headline": headline,
         "text": "Piogge intense dal pomeriggio, possibili allagamenti.\nEvitare sottopassi e argini.",
         "instruction": "Non uscire se non necessario. Salire ai piani alti.",
         "area": "Montelupo centro, Fibbiana", "effective": iso(now - dt.timedelta(hours=1)),
         "expires": iso(now + expires) if expires is not None else None,
         "link": base + "/allerta/cap/" + id + ".xml", "language": "it"}
    a.update(kw); return a
def write(name, alerts, d="public"):
    json.dump({"generated_at": iso(now), "alerts": alerts}, open(f"{T}/{d}/{name}", "w"), ensure_ascii=False)
evil = "Allerta <script>alert(1)</script> & rosso"
write("banner.json", [alert("a1", "Extreme", evil), alert("a2", "Moderate", "Allerta gialla vento")])
write("expired.json", [alert("x1", "Extreme", "Scaduta", expires=-dt.timedelta(minutes=1))])
write("expired-first.json", [alert("x1", "Extreme", "Scaduta", expires=-dt.timedelta(minutes=1)),
                             alert("m1", "Moderate", "Allerta gialla per temporali")])
write("empty.json", [])
write("soon.json", [alert("s1", "Severe", "Scade tra poco")])  # expires rewritten below
write("drill-banner.json", [alert("d1", "Severe", "ESERCITAZIONE: evacuazione scuola Baccio da Montelupo",
                                  status="Exercise", event="Esercitazione", expires=None)])
write("en.json", [alert("l1", "Severe", "Allerta arancione"),
                  alert("l1", "Severe", "Orange alert", language="en")])
for sev, h in [("Extreme", "Allerta rossa per rischio idraulico"), ("Severe", "Allerta arancione per vento"),
               ("Moderate", "Allerta gialla per neve"), ("Minor", "Interruzione acqua in via Roma")]:
    write(f"sev-{sev}.json", [alert("c" + sev, sev, h, msg_type="Update" if sev == "Minor" else "Alert")])
# for the refresh test (served by a tiny server on APORT): alert, then errors / empty
json.dump({"generated_at": iso(now), "alerts": [alert("r1", "Extreme", "Refresh test")]},
          open(f"{T}/refresh-alert.json", "w"))
EOF
cp "$WEB/allerta-banner.js" "$T/public/"
printf '<div class="allerta-ssi">SSI banner fragment</div>\n' > "$T/public/banner.html"
printf '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"/>\n' > "$T/public/feed.atom"
printf '<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>\n' > "$T/public/cap/a1.xml"
echo secret > "$T/public/.banner.json.tmp"
cp "$WEB/example.html" "$T/site/"
page() { # name, body (a page that loads the widget from /allerta/)
  printf '<!DOCTYPE html><html lang="it"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>%s</title></head><body><h1>Pagina %s</h1>%s</body></html>\n' "$1" "$1" "$2" > "$T/site/$1.html"
}
js() { printf '<script src="/allerta/allerta-banner.js" %s defer></script>' "$1"; }
for s in expired expired-first empty soon en; do page "$s" "$(js "data-src=\"$s.json\"")"; done
page drill "$(js 'data-src="drill-banner.json"')"
page refresh "$(js "data-src=\"http://127.0.0.1:$APORT/banner.json\"")"
page container '<p>Prima</p><div id="allerta-banner"></div><p>Dopo</p>'"$(js '')"
page colors '<div id="allerta-banner"></div>'"$(for s in Extreme Severe Moderate Minor; do js "data-src=\"sev-$s.json\""; done; js 'data-src="drill-banner.json"')"
page lang-en "$(js 'data-src="en.json" data-lang="en"')"
# a site whose own CSS would fight the banner (tiny rem, grey p, blue links, red strong)
page hostile '<style>html{font-size:62.5%}body{font-size:1.2rem}p{color:#777;margin:2em}a{color:#00f}strong{color:red}</style><header style="font-size:10px"><div id="allerta-banner"></div></header><p>Testo del sito</p>'"$(js '')"
printf '<!DOCTYPE html><html><body><!--#include virtual="/allerta/banner.html" --><p>x</p></body></html>\n' > "$T/site/ssi.shtml"

# --- nginx: the real snippet, alias pointed at the fixture dir ---------------
sed "s#alias /var/lib/allerta/public/;#alias $T/public/;#" "$WEB/nginx-allerta.conf" > "$T/allerta.conf"
cat > "$T/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $T/nginx.pid; error_log $T/logs/error.log;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  access_log $T/logs/access.log;
  client_body_temp_path $T/tmp_body; proxy_temp_path $T/tmp_proxy; fastcgi_temp_path $T/tmp_fcgi;
  uwsgi_temp_path $T/tmp_uwsgi; scgi_temp_path $T/tmp_scgi;
  server { listen 127.0.0.1:$PORT; root $T/site; include $T/allerta.conf; }
}
EOF
nginx -p "$T" -c "$T/nginx.conf" -t -q || { echo "nginx config invalid"; exit 1; }
nginx -p "$T" -c "$T/nginx.conf" & NGINX=$!
# refresh-test server. mode fail: 1st GET -> alert, 2nd -> 503, then connection dropped;
# mode empty: 1st GET -> alert, then an empty list
python3 - "$APORT" "$T/refresh-alert.json" <<'EOF' & APY=$!
import http.server, sys
body = open(sys.argv[2], 'rb').read(); n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == '/count':
            self.send_response(200); self.end_headers(); return self.wfile.write(b'%d' % n[0])
        n[0] += 1
        if self.server.mode == 'fail': k = min(n[0], 3)
        else: k = 1 if n[0] == 1 else 4
        if k == 2: return self.send_error(503)
        if k == 3: self.close_connection = True; return
        data = body if k == 1 else b'{"generated_at":"x","alerts":[]}'
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Access-Control-Allow-Origin', '*'); self.end_headers(); self.wfile.write(data)
    def do_POST(self):  # POST /fail or /empty: switch mode and restart the count
        self.server.mode = self.path.strip('/'); n[0] = 0; self.send_response(204); self.end_headers()
s = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H); s.mode = 'fail'; s.serve_forever()
EOF
# on exit: stop both servers; keep the work dir (DOM dumps, logs) only when a check failed
trap 'kill -QUIT $NGINX 2>/dev/null; kill $APY 2>/dev/null; wait 2>/dev/null; [ "$FAIL" = 0 ] && rm -rf "$T" || echo "kept $T" >&2' EXIT
for i in $(seq 100); do curl -sf -o /dev/null "$BASE/allerta/banner.json" && curl -sf -o /dev/null "http://127.0.0.1:$APORT/count" && break; sleep 0.05; done

CHROME=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1')
# dom NAME URL [virtual ms]: DOM after scripts ran (virtual time lets fetches and timers finish)
dom() { "${CHROME[@]}" --user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" --virtual-time-budget="${3:-3000}" --dump-dom "$2" > "$T/$1.dom" 2>/dev/null; }
shot() { "${CHROME[@]}" --user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" --virtual-time-budget=3000 --hide-scrollbars \
  --window-size="$3" --screenshot="$OUT/$1.png" "$2" >/dev/null 2>&1; }

dom example "$BASE/example.html"
has example 'role="alert"'; has example 'aria-live="assertive"'; has example 'allerta-sev-extreme'
has example 'Allerta &lt;script&gt;alert(1)&lt;/script&gt; &amp; rosso'
hasnt example '<script>alert(1)'; has example 'Allerta rossa'; has example 'Valida fino a '
has example "href=\"$BASE/allerta/cap/a1.xml\">Dettagli</a>"; has example 'Zona: Montelupo centro, Fibbiana'
hasnt example 'Allerta gialla vento'
CHECK="banner is the first child of body"; ok grep -qE '<body>[[:space:]]*<div class="allerta-banner' "$T/example.dom"
dom expired "$BASE/expired.html"; hasnt expired 'role="alert"'; hasnt expired 'allerta-style'
dom empty "$BASE/empty.html"; hasnt empty 'role="alert"'; hasnt empty 'allerta-style'
dom expired-first "$BASE/expired-first.html"; has expired-first 'Allerta gialla per temporali'; hasnt expired-first 'Scaduta'
dom drill "$BASE/drill.html"; has drill 'ESERCITAZIONE</span>'; has drill 'allerta-exercise'; has drill 'Valida fino a nuovo avviso'
dom container "$BASE/container.html"; CHECK="banner inside #allerta-banner"
ok grep -qF '<div id="allerta-banner"><div class="allerta-banner' "$T/container.dom"
dom lang-en "$BASE/lang-en.html"; has lang-en 'Orange alert'; has lang-en 'lang="en"'
# expires 30 s from now: shown at first, gone once the expiry timer fired (virtual time)
python3 - "$T/public/soon.json" <<'EOF'
import json, sys, datetime as dt
d = json.load(open(sys.argv[1])); tz = dt.timezone(dt.timedelta(hours=1))
d["alerts"][0]["expires"] = (dt.datetime.now(tz).replace(microsecond=0) + dt.timedelta(seconds=30)).isoformat()
json.dump(d, open(sys.argv[1], "w"))
EOF
dom soon-early "$BASE/soon.html" 2000; has soon-early 'Scade tra poco'
dom soon-late "$BASE/soon.html" 45000; hasnt soon-late 'Scade tra poco'; hasnt soon-late 'role="alert"'
curl -s -X POST "http://127.0.0.1:$APORT/fail" >/dev/null
dom refresh-fail "$BASE/refresh.html" 150000; has refresh-fail 'Refresh test'  # 503 + dropped conn: kept
CHECK="3 fetches in 150 s"; ok test "$(curl -s "http://127.0.0.1:$APORT/count")" -ge 3
curl -s -X POST "http://127.0.0.1:$APORT/empty" >/dev/null
dom refresh-empty "$BASE/refresh.html" 65000; hasnt refresh-empty 'Refresh test' # next refresh: removed

# --- nginx headers, types, SSI ----------------------------------------------
hdr() { curl -sI "$BASE$1" | tr -d '\r' > "$T/h"; CHECK="$1 $2"; ok grep -qi -- "^$2" "$T/h"; }
hdr /allerta/banner.json 'content-type: application/json'; hdr /allerta/banner.json 'cache-control: no-cache'
hdr /allerta/banner.json 'access-control-allow-origin: \*'; hdr /allerta/drill-banner.json 'cache-control: no-cache'
hdr /allerta/banner.html 'cache-control: no-cache'; hdr /allerta/feed.atom 'content-type: application/atom+xml'
hdr /allerta/feed.atom 'cache-control: no-cache'; hdr /allerta/cap/a1.xml 'content-type: application/cap+xml'
hdr /allerta/allerta-banner.js 'content-type: text/javascript'; hdr /allerta/allerta-banner.js 'cache-control: public, max-age=300'
hdr /allerta/.banner.json.tmp 'HTTP/1.1 404'; hdr /allerta/ 'HTTP/1.1 403'
CHECK="SSI include"; ok bash -c "curl -s $BASE/ssi.shtml | grep -q 'SSI banner fragment'"

# --- screenshots (look at them) -----------------------------------------------
shot phone "$BASE/example.html" 390,844; shot desktop "$BASE/example.html" 1200,800
shot colors-phone "$BASE/colors.html" 390,844; shot colors-desktop "$BASE/colors.html" 1200,800
shot drill-phone "$BASE/drill.html" 390,844; shot hostile-phone "$BASE/hostile.html" 390,844
for f in phone desktop colors-phone colors-desktop drill-phone hostile-phone; do CHECK="screenshot $f"; ok test -s "$OUT/$f.png"; done
echo "screenshots: $OUT"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
