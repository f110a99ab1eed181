#!/usr/bin/python3
"""Twilio Programmable Voice, played locally for allerta's voice tests.

    /usr/bin/python3 tests/servers/twilio_server.py --port 0 \
        --sid ACCOUNT_SID --token AUTH_TOKEN --log FILE

Prints ``READY <port>`` once bound. Speaks Twilio's REST formats:

  POST /2010-04-01/Accounts/<SID>/Calls.json, HTTP basic auth SID:TOKEN
    (else 401 {"code": 20003, …}); form fields To, From, Url,
    StatusCallback (+ Method, StatusCallbackMethod, StatusCallbackEvent,
    Timeout); 201 {"sid": "CA…", "status": "queued", …}; errors as Twilio
    sends them: 400 {"code": 21211, "message": "The 'To' number … is not a
    valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211",
    "status": 400}.
  GET /2010-04-01/Accounts/<SID>/Calls/<CallSid>.json: the call resource
    ({"sid", "status", …}); 404 {"code": 20404, …} for an unknown call.

Then, like Twilio, it *makes the callbacks* to the URLs it was given, each
signed with X-Twilio-Signature (base64 HMAC-SHA1 of the full URL followed
by the sorted POST parameters, keyed with the auth token): it POSTs Url for
the TwiML (CallSid, AccountSid, From, To, CallStatus=in-progress,
Direction=outbound-api, ApiVersion=2010-04-01), reads the <Gather action>,
POSTs Digits there when the number presses a key, and POSTs StatusCallback
with the final CallStatus (and CallDuration, AnsweredBy, ErrorCode).

What a number does, by its digits after +39:
  0551…  answers, listens, presses 1            0552…  answers, presses nothing
  0553…  busy the first time, then as 0551      0554…  never answers (no-answer)
  0559…  invalid: 400 code 21211                0555…  held: queued until
                                                       POST /control/complete
Control (no auth; tests only): POST /control/complete ends every held call
as 0551 would; POST /control/forge with JSON {"url", "params", "sign":
"good"|"bad"|"none"} posts that request and answers {"status": HTTP code}.

Every event is one JSON line in --log: {"event": "call"|"twiml"|"gather"|
"status"|"lookup"|"refused", …}.
"""

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
IDS = itertools.count(1)
CALLS = {}  # sid -> {"to", "url", "status_callback", "status"}
DIALS = {}  # number -> calls so far
HELD = []  # sids waiting for /control/complete


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--sid", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    log_file = open(args.log, "a", buffering=1, encoding="utf-8")

    def log(**event):
        with LOCK:
            log_file.write(json.dumps(event) + "\n")

    def signature(url, params, token=args.token):
        data = url + "".join(k + v for k, v in sorted(params))
        mac = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
        return base64.b64encode(mac).decode()

    def post(url, params, sign="good"):
        """POSTs a form like Twilio does; returns (HTTP status, body)."""
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(url, data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header("User-Agent", "TwilioProxy/1.1")
        if sign == "good":
            req.add_header("X-Twilio-Signature", signature(url, params))
        elif sign == "bad":
            req.add_header("X-Twilio-Signature", signature(url, params, "not-the-token"))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def base_params(sid, call, status):
        return [
            ("AccountSid", args.sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", sid),
            ("CallStatus", status),
            ("Called", call["to"]),
            ("Direction", "outbound-api"),
            ("From", call["from"]),
            ("To", call["to"]),
        ]

    def finish(sid, status, extra=()):
        call = CALLS[sid]
        call["status"] = status
        params = base_params(sid, call, status) + list(extra)
        code, _ = post(call["status_callback"], params)
        log(event="status", sid=sid, to=call["to"], status=status, http=code)

    def play(sid, press):
        """Answered: fetch the TwiML, maybe press a key, then hang up."""
        call = CALLS[sid]
        call["status"] = "in-progress"
        code, twiml = post(call["url"], base_params(sid, call, "in-progress"))
        log(event="twiml", sid=sid, to=call["to"], http=code, body=twiml)
        m = re.search(r'<Gather[^>]*action="([^"]*)"', twiml)
        if press and m and code == 200:
            action = m.group(1).replace("&amp;", "&")
            params = base_params(sid, call, "in-progress") + [
                ("Digits", press),
                ("FinishedOnKey", ""),
            ]
            gcode, reply = post(action, params)
            log(event="gather", sid=sid, to=call["to"], http=gcode, body=reply)
        finish(sid, "completed", [("CallDuration", "42"), ("AnsweredBy", "human")])

    def run_call(sid, kind):
        time.sleep(0.05)
        if kind == "busy":
            finish(sid, "busy", [("CallDuration", "0")])
        elif kind == "no-answer":
            finish(sid, "no-answer", [("CallDuration", "0")])
        elif kind == "held":
            with LOCK:
                HELD.append(sid)
        else:
            play(sid, "1" if kind == "press" else None)

    def behaviour(number):
        digits = number.lstrip("+")
        with LOCK:
            n = DIALS.get(number, 0) + 1
            DIALS[number] = n
        if digits.startswith("390559"):
            return "invalid"
        if digits.startswith("390553"):
            return "busy" if n == 1 else "press"
        if digits.startswith("390554"):
            return "no-answer"
        if digits.startswith("390555"):
            return "held"
        if digits.startswith("390552"):
            return "listen"
        return "press"

    def error(status, code, message):
        return status, {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            expected = "Basic " + base64.b64encode(f"{args.sid}:{args.token}".encode()).decode()
            return self.headers.get("Authorization") == expected

        def do_GET(self):
            m = re.fullmatch(rf"/2010-04-01/Accounts/{args.sid}/Calls/(CA[0-9a-f]+)\.json", self.path)
            if not m:
                return self.reply(*error(404, 20404, "The requested resource was not found"))
            if not self.authorized():
                return self.reply(*error(401, 20003, "Authenticate"))
            sid = m.group(1)
            log(event="lookup", sid=sid)
            call = CALLS.get(sid)
            if call is None:
                return self.reply(*error(404, 20404, f"The requested resource /Calls/{sid}.json was not found"))
            self.reply(200, {"sid": sid, "account_sid": args.sid, "to": call["to"],
                             "from": call["from"], "status": call["status"]})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if self.path == "/control/complete":
                with LOCK:
                    held = list(HELD)
                    HELD.clear()
                for sid in held:
                    play(sid, "1")
                return self.reply(200, {"completed": held})
            if self.path == "/control/forge":
                doc = json.loads(raw)
                params = [tuple(p) for p in doc["params"]]
                code, body = post(doc["url"], params, doc.get("sign", "good"))
                return self.reply(200, {"status": code, "body": body})
            if self.path != f"/2010-04-01/Accounts/{args.sid}/Calls.json":
                return self.reply(*error(404, 20404, "The requested resource was not found"))
            if not self.authorized():
                log(event="refused", reason="auth")
                return self.reply(*error(401, 20003, "Authenticate"))
            form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
            for field in ("To", "From", "Url"):
                if not form.get(field):
                    return self.reply(*error(400, 21201 if field == "To" else 21205,
                                             f"No '{field}' number is specified"))
            to = form["To"]
            kind = behaviour(to)
            if kind == "invalid":
                log(event="refused", reason="21211", to=to)
                return self.reply(*error(400, 21211, f"The 'To' number {to} is not a valid phone number."))
            sid = "CA%032x" % next(IDS)
            with LOCK:
                CALLS[sid] = {"to": to, "from": form["From"], "url": form["Url"],
                              "status_callback": form.get("StatusCallback", ""), "status": "queued"}
            log(event="call", sid=sid, form=form)
            self.reply(201, {"sid": sid, "account_sid": args.sid, "to": to, "from": form["From"],
                             "status": "queued", "direction": "outbound-api",
                             "api_version": "2010-04-01",
                             "uri": f"/2010-04-01/Accounts/{args.sid}/Calls/{sid}.json"})
            threading.Thread(target=run_call, args=(sid, kind), daemon=True).start()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
