#!/usr/bin/python3
"""A commercial SMS gateway for allerta's HTTP-transport tests.

    /usr/bin/python3 tests/servers/sms_gateway.py --mode twilio|form --port 0 \
        --user USER --password PASSWORD --log FILE [--callback-url URL]

Prints ``READY <port>`` once bound. Every accepted message is appended to
--log as one JSON line {"to", "from", "text", "id", "at"} ("at": monotonic
seconds, for rate checks).

``--mode twilio`` speaks Twilio's Messages resource:
  POST /2010-04-01/Accounts/<USER>/Messages.json, HTTP basic auth USER:PASSWORD
  (else 401 {"code": 20003}); form fields To, From, Body, StatusCallback;
  201 {"sid": "SM…", "status": "queued"}; then it POSTs the StatusCallback
  (form MessageSid, MessageStatus: "sent", then "delivered", or
  "undelivered" with ErrorCode 30003).

``--mode form`` speaks a typical bulk-SMS form API:
  POST /api/send with fields user, pass, to (digits), from, text, ref;
  200 "OK id=N", or 200 "ERR 21 invalid number", or 401 on bad credentials;
  then it GETs --callback-url with &msgid=N&stato=DELIVRD|UNDELIV&errore=….

By recipient (digits after +39): 339… invalid number (Twilio 400 code 21211,
form "ERR 21"); 338… accepted then undeliverable; 336… answered 503 the first
time (transient) and accepted afterwards; anything else delivered.
"""

import argparse
import base64
import itertools
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDS = itertools.count(1)
LOCK = threading.Lock()
SEEN_TRANSIENT = set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["twilio", "form"], required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--callback-url")
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1, encoding="utf-8")

    def later(fn, *a):
        threading.Thread(target=fn, args=a, daemon=True).start()

    def call(url, data=None):
        for _ in range(50):
            try:
                body = urllib.parse.urlencode(data).encode() if data is not None else None
                urllib.request.urlopen(url, data=body, timeout=5).read()
                return
            except urllib.error.HTTPError:
                return  # the receiver answered: do not insist
            except Exception:
                time.sleep(0.2)

    def twilio_callbacks(url, sid, final):
        time.sleep(0.3)
        call(url, {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": args.user})
        time.sleep(0.1)
        data = {"MessageSid": sid, "MessageStatus": final, "AccountSid": args.user}
        if final == "undelivered":
            data["ErrorCode"] = "30003"
        call(url, data)

    def form_callback(mid, final):
        time.sleep(0.3)
        sep = "&" if "?" in args.callback_url else "?"
        q = {"msgid": mid, "stato": final}
        if final == "UNDELIV":
            q["errore"] = "phone switched off"
        call(args.callback_url + sep + urllib.parse.urlencode(q))

    def behaviour(digits):
        if digits.startswith("39339"):
            return "invalid"
        if digits.startswith("39336"):
            with LOCK:
                if digits not in SEEN_TRANSIENT:
                    SEEN_TRANSIENT.add(digits)
                    return "transient"
        if digits.startswith("39338"):
            return "undeliverable"
        return "ok"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body, ctype="application/json"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
            if args.mode == "twilio":
                self.twilio(form)
            else:
                self.form(form)

        def twilio(self, form):
            if self.path != f"/2010-04-01/Accounts/{args.user}/Messages.json":
                return self.reply(404, json.dumps({"code": 20404, "message": "not found", "status": 404}))
            expected = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.reply(401, json.dumps({"code": 20003, "message": "Authenticate", "status": 401}))
            to = form.get("To", "")
            b = behaviour(to.lstrip("+"))
            if b == "invalid":
                return self.reply(400, json.dumps({"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400}))
            if b == "transient":
                return self.reply(503, json.dumps({"code": 20500, "message": "Service unavailable", "status": 503}))
            sid = "SM%032x" % next(IDS)
            with LOCK:
                log.write(json.dumps({"to": to, "from": form.get("From"), "text": form.get("Body"), "id": sid, "at": time.monotonic()}) + "\n")
            self.reply(201, json.dumps({"sid": sid, "status": "queued", "to": to, "body": form.get("Body")}))
            if form.get("StatusCallback"):
                later(twilio_callbacks, form["StatusCallback"], sid, "undelivered" if b == "undeliverable" else "delivered")

        def form(self, form):
            if self.path != "/api/send":
                return self.reply(404, "ERR 404 not found", "text/plain")
            if form.get("user") != args.user or form.get("pass") != args.password:
                return self.reply(401, "ERR 10 authentication failed", "text/plain")
            to = form.get("to", "")
            b = behaviour(to)
            if b == "invalid":
                return self.reply(200, "ERR 21 invalid number", "text/plain")
            if b == "transient":
                return self.reply(503, "ERR 50 busy", "text/plain")
            mid = str(next(IDS))
            with LOCK:
                log.write(json.dumps({"to": to, "from": form.get("from"), "text": form.get("text"), "id": mid, "ref": form.get("ref"), "at": time.monotonic()}) + "\n")
            self.reply(200, f"OK id={mid}", "text/plain")
            if args.callback_url:
                later(form_callback, mid, "UNDELIV" if b == "undeliverable" else "DELIVRD")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
