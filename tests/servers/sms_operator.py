#!/usr/bin/python3
"""A tiny mobile "operator" for Kannel's `smsc = http` (system-type generic).

    /usr/bin/python3 tests/servers/sms_operator.py --port 0 --kannel-port PORT [--log FILE]

Kannel's `send-url` must point at `http://127.0.0.1:<port>/send?to=%p&text=%b`.
After binding it prints ``READY <port>`` on stdout. Behaviour by recipient
(the E.164 number Kannel passes as `to`):

  * ``+39339…``: permanent reject, the reply is ``ERROR number not in service``
    (Kannel's ``status-permfail-regex = "^ERROR"`` → delivery report 16);
  * ``+39338…``: accepted (``OK id=N``), then reported *undeliverable*: the
    operator calls Kannel back with ``dlr-mask=2`` (Kannel reports 8, then 2);
  * anything else: accepted, then reported *delivered* (``dlr-mask=1``).

Callbacks go to ``http://127.0.0.1:<kannel-port>/?dlr-mid=N&to=…&dlr-mask=M``
shortly after the reply. Each request is logged as one JSON line to --log.
"""

import argparse
import itertools
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTER = itertools.count(1000)
LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--kannel-port", type=int, required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1, encoding="utf-8") if args.log else None

    def callback(mid, to, mask):
        time.sleep(0.2)
        q = urllib.parse.urlencode({"dlr-mid": mid, "to": to, "dlr-mask": mask})
        url = f"http://127.0.0.1:{args.kannel_port}/?{q}"
        for _ in range(50):
            try:
                urllib.request.urlopen(url, timeout=5).read()
                return
            except Exception:
                time.sleep(0.2)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            to = q.get("to", [""])[0]
            text = q.get("text", [""])[0]
            mid = str(next(COUNTER))
            if to.startswith("+39339"):
                body, mask = "ERROR number not in service", None
            elif to.startswith("+39338"):
                body, mask = f"OK id={mid}", 2
            else:
                body, mask = f"OK id={mid}", 1
            if log:
                with LOCK:
                    log.write(json.dumps({"to": to, "text": text, "reply": body}) + "\n")
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if mask:
                threading.Thread(target=callback, args=(mid, to, mask), daemon=True).start()

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
