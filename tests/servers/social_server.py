#!/usr/bin/env python3
"""The three social APIs allerta posts to, on one local port (stdlib only),
with their real JSON shapes, status codes and errors:

- Facebook Graph API under /v21.0: GET /{page-id}?fields=id,name,
  POST /{page-id}/feed (message, link), GET /{page-id}/feed,
  POST /{post-id}/comments, GET /{post-id}/comments. A wrong token is the
  real 400 OAuthException code 190; an unknown object the real code 100.
- Mastodon: POST /api/v1/statuses (status, visibility, in_reply_to_id) with
  Idempotency-Key (the same key returns the same status), 422 "Validation
  failed: Text character limit of N exceeded" (URLs count 23),
  GET /api/v1/accounts/verify_credentials, 401 "The access token is invalid",
  429 with X-RateLimit-Limit/Remaining/Reset.
- Bluesky (XRPC): com.atproto.server.createSession,
  com.atproto.repo.createRecord (app.bsky.feed.post; rkey must be a TID; a
  second write of a key answers 500 as today's PDS does; text over 300
  graphemes and facets that do not cover their link are 400 InvalidRequest;
  reply root/parent must name existing posts by uri and cid),
  com.atproto.repo.getRecord (400 RecordNotFound), 429 with
  RateLimit-Limit/Remaining/Reset/Policy.

Test control:
  POST /_test/fault   {"network": "mastodon", "kind": "status", "status": 503}
                      {"network": "bluesky", "kind": "rate_limit", "reset_in": 1}
                      {"network": "facebook", "kind": "drop_after_create"}
                      {"network": "bluesky", "kind": "hang_after_create", "seconds": 20}
                      (creates the post, then answers nothing for that long)
                      (each fault applies once, to the next post on that network)
  POST /_test/config  {"mastodon_max": 100}
  POST /_test/delete  {"network": "mastodon"}   (the account deletes every post)
  GET  /_test/state   {"facebook": [...], "mastodon": [...], "bluesky": [...],
                       "calls": [{"network", "method", "path", "status"}]}

Prints `READY <port>` on stdout once listening.
"""

import argparse
import datetime
import hashlib
import json
import re
import threading
import time
import unicodedata
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.RLock()  # send() records the call while a handler may hold it
STATE = {"facebook": [], "mastodon": [], "bluesky": [], "calls": []}
FAULTS = []
CONFIG = {"mastodon_max": 500}
ARGS = None

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
URL = re.compile(r"https?://[^\s<>]+[^\s<>.,;:!?)\]'\"]")
DID = "did:plc:comuneexampletest0000"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def graphemes(text):
    """An approximation good for the tests' texts: code points, not counting
    combining marks, variation selectors, ZWJ and what a ZWJ joins."""
    n = 0
    join = False
    for c in text:
        if unicodedata.combining(c) or c in "\ufe0f\ufe0e":
            continue
        if c == "\u200d":
            join = True
            continue
        if join:
            join = False
            continue
        n += 1
    return n


def mastodon_length(text):
    return graphemes(URL.sub("x" * 23, text))


def take_fault(network):
    with LOCK:
        for i, f in enumerate(FAULTS):
            if f["network"] == network:
                return FAULTS.pop(i)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing ---------------------------------------------------------
    def body(self):
        """The request body (read once: a keep-alive connection needs it
        consumed even when the request is refused)."""
        if hasattr(self, "_body"):
            return self._body
        self._body = self.parse_body()
        return self._body

    def parse_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        kind = self.headers.get("Content-Type", "")
        if "json" in kind:
            return json.loads(raw or b"{}")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}

    def send(self, status, payload, headers=None, network=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        if network:
            with LOCK:
                STATE["calls"].append(
                    {"network": network, "method": self.command, "path": self.path, "status": status}
                )

    def drop(self, network):
        """The post was created; the answer never comes."""
        with LOCK:
            STATE["calls"].append(
                {"network": network, "method": self.command, "path": self.path, "status": "dropped"}
            )
        self.close_connection = True

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def apply_fault(self, network, fault, rate_headers):
        """Answers a status or rate-limit fault; returns True if it did."""
        if fault is None or fault["kind"] in ("drop_after_create", "hang_after_create"):
            return False
        if fault["kind"] == "rate_limit":
            status, body = 429, fault.get("body")
            headers = rate_headers(fault.get("reset_in", 1))
            if network == "facebook":
                status = 400
        else:
            status, body, headers = fault["status"], fault.get("body"), fault.get("headers", {})
        if body is None:
            body = default_error(network, status)
        self.send(status, body, headers, network)
        return True

    # -- routing ----------------------------------------------------------
    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        if hasattr(self, "_body"):
            del self._body
        if method == "POST":
            self.body()
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        path = url.path
        if path == "/_test/state":
            with LOCK:
                return self.send(200, STATE)
        if path == "/_test/fault" and method == "POST":
            with LOCK:
                FAULTS.append(self.body())
            return self.send(200, {"ok": True})
        if path == "/_test/delete" and method == "POST":
            with LOCK:
                STATE[self.body()["network"]].clear()
            return self.send(200, {"ok": True})
        if path == "/_test/config" and method == "POST":
            with LOCK:
                CONFIG.update(self.body())
            return self.send(200, {"ok": True})
        if path.startswith("/v21.0/"):
            return self.facebook(method, path[len("/v21.0/"):], query)
        if path.startswith("/api/v1/"):
            return self.mastodon(method, path[len("/api/v1/"):])
        if path.startswith("/xrpc/"):
            return self.bluesky(method, path[len("/xrpc/"):], query)
        self.send(404, {"error": "Not found"})

    # -- Facebook ---------------------------------------------------------
    def facebook(self, method, path, query):
        form = self.body() if method == "POST" else {}
        token = self.bearer() or form.get("access_token") or query.get("access_token")
        if token != ARGS.fb_token:
            return self.send(400, fb_error(
                "Invalid OAuth access token - Cannot parse access token", "OAuthException", 190
            ), network="facebook")
        parts = path.split("/")
        page = ARGS.fb_page
        if method == "GET" and parts == [page]:
            return self.send(200, {"id": page, "name": "Comune di Prova - Protezione Civile"},
                             network="facebook")
        if len(parts) == 2 and parts[1] == "feed" and parts[0] == page:
            if method == "GET":
                with LOCK:
                    data = [public_post(p) for p in reversed(STATE["facebook"])]
                return self.send(200, {"data": data[: int(query.get("limit", 25))], "paging": {}},
                                 network="facebook")
            return self.facebook_write(form, None)
        if len(parts) == 2 and parts[1] == "comments":
            with LOCK:
                post = next((p for p in STATE["facebook"] if p["id"] == parts[0]), None)
            if post is None:
                return self.send(400, fb_error(
                    "Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation" % parts[0],
                    "GraphMethodException", 100, 33), network="facebook")
            if method == "GET":
                with LOCK:
                    data = [dict(c) for c in reversed(post["comments"])]
                return self.send(200, {"data": data, "paging": {}}, network="facebook")
            return self.facebook_write(form, post)
        self.send(400, fb_error("Unknown path components: /%s" % path, "OAuthException", 2500),
                  network="facebook")

    def facebook_write(self, form, post):
        fault = take_fault("facebook")
        if self.apply_fault("facebook", fault, lambda reset: {
            "X-Business-Use-Case-Usage": json.dumps({ARGS.fb_page: [{
                "type": "pages", "call_count": 100, "total_cputime": 10, "total_time": 10,
                "estimated_time_to_regain_access": 1}]})}):
            return
        message = form.get("message", "")
        if not message:
            return self.send(400, fb_error("(#100) Missing message or attachment", "OAuthException", 100),
                             network="facebook")
        created = now().strftime("%Y-%m-%dT%H:%M:%S+0000")
        with LOCK:
            if post is None:
                pid = "%s_%d" % (ARGS.fb_page, 1000 + len(STATE["facebook"]))
                item = {"id": pid, "message": message, "created_time": created, "comments": []}
                if "link" in form:
                    item["link"] = form["link"]
                STATE["facebook"].append(item)
            else:
                pid = "%s_%d" % (post["id"].split("_")[1], 5000 + len(post["comments"]))
                post["comments"].append({"id": pid, "message": message, "created_time": created})
        if fault and fault["kind"] in ("drop_after_create", "hang_after_create"):
            if fault["kind"] == "hang_after_create":
                time.sleep(fault.get("seconds", 20))
            return self.drop("facebook")
        self.send(200, {"id": pid}, network="facebook")

    # -- Mastodon ---------------------------------------------------------
    def mastodon(self, method, path):
        if self.bearer() != ARGS.mastodon_token:
            return self.send(401, {"error": "The access token is invalid"}, network="mastodon")
        if method == "GET" and path == "accounts/verify_credentials":
            return self.send(200, {"id": "109000000000000001", "username": "protezionecivile",
                                   "acct": "protezionecivile", "display_name": "Protezione Civile",
                                   "locked": False, "bot": False}, network="mastodon")
        if method == "POST" and path == "statuses":
            return self.mastodon_post(self.body())
        self.send(404, {"error": "Record not found"}, network="mastodon")

    def mastodon_post(self, form):
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            known = next((s for s in STATE["mastodon"] if key and s["idempotency_key"] == key), None)
        if known is not None:
            return self.send(200, status_json(known), network="mastodon")
        fault = take_fault("mastodon")
        if self.apply_fault("mastodon", fault, lambda reset: {
            "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": (now() + datetime.timedelta(seconds=reset)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}):
            return
        text = form.get("status", "")
        limit = CONFIG["mastodon_max"]
        if not text.strip():
            return self.send(422, {"error": "Validation failed: Text can't be blank"}, network="mastodon")
        if mastodon_length(text) > limit:
            return self.send(422, {"error": "Validation failed: Text character limit of %d exceeded" % limit},
                             network="mastodon")
        reply_to = form.get("in_reply_to_id")
        with LOCK:
            if reply_to and not any(s["id"] == reply_to for s in STATE["mastodon"]):
                return self.send(404, {"error": "Record not found"}, network="mastodon")
            sid = str(110000000000000000 + len(STATE["mastodon"]) + 1)
            status = {"id": sid, "text": text, "visibility": form.get("visibility", "public"),
                      "in_reply_to_id": reply_to, "idempotency_key": key,
                      "created_at": now().strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            STATE["mastodon"].append(status)
        if fault and fault["kind"] in ("drop_after_create", "hang_after_create"):
            if fault["kind"] == "hang_after_create":
                time.sleep(fault.get("seconds", 20))
            return self.drop("mastodon")
        self.send(200, status_json(status), network="mastodon")

    # -- Bluesky ----------------------------------------------------------
    def bluesky(self, method, nsid, query):
        if nsid == "com.atproto.server.createSession" and method == "POST":
            b = self.body()
            if b.get("identifier") != ARGS.bsky_handle or b.get("password") != ARGS.bsky_password:
                return self.send(401, {"error": "AuthenticationRequired",
                                       "message": "Invalid identifier or password"}, network="bluesky")
            return self.send(200, {"did": DID, "handle": ARGS.bsky_handle, "email": "pc@comune.example.it",
                                   "accessJwt": "jwt-access-" + ARGS.bsky_password[::-1],
                                   "refreshJwt": "jwt-refresh", "active": True}, network="bluesky")
        if self.bearer() != "jwt-access-" + ARGS.bsky_password[::-1]:
            return self.send(401, {"error": "AuthenticationRequired",
                                   "message": "Authentication Required"}, network="bluesky")
        if nsid == "com.atproto.repo.getRecord" and method == "GET":
            rkey = query.get("rkey", "")
            with LOCK:
                rec = next((r for r in STATE["bluesky"] if r["rkey"] == rkey), None)
            if rec is None or query.get("repo") not in (DID, ARGS.bsky_handle):
                uri = "at://%s/%s/%s" % (query.get("repo"), query.get("collection"), rkey)
                return self.send(400, {"error": "RecordNotFound", "message": "Could not locate record: " + uri},
                                 network="bluesky")
            return self.send(200, {"uri": rec["uri"], "cid": rec["cid"], "value": rec["value"]},
                             network="bluesky")
        if nsid == "com.atproto.repo.createRecord" and method == "POST":
            return self.bluesky_create(self.body())
        self.send(501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"},
                  network="bluesky")

    def bluesky_create(self, b):
        fault = take_fault("bluesky")
        if self.apply_fault("bluesky", fault, lambda reset: {
            "RateLimit-Limit": "5000", "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(now().timestamp()) + reset), "RateLimit-Policy": "5000;w=3600"}):
            return
        bad = lambda m: self.send(400, {"error": "InvalidRequest", "message": m}, network="bluesky")
        rkey = b.get("rkey", "")
        record = b.get("record", {})
        if b.get("repo") not in (DID, ARGS.bsky_handle):
            return bad("Input/repo must be the authenticated account")
        if b.get("collection") != "app.bsky.feed.post" or record.get("$type") != "app.bsky.feed.post":
            return bad("Invalid collection")
        if not TID.match(rkey):
            return bad("Invalid record key: must be a TID")
        text = record.get("text", "")
        if graphemes(text) > 300:
            return bad("Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes")
        if "createdAt" not in record:
            return bad('Invalid app.bsky.feed.post record: Record must have the property "createdAt"')
        raw = text.encode()
        for f in record.get("facets", []):
            i = f["index"]
            uri = f["features"][0].get("uri")
            if raw[i["byteStart"]:i["byteEnd"]].decode(errors="replace") != uri:
                return bad("Invalid app.bsky.feed.post record: facet does not cover its link")
        with LOCK:
            if any(r["rkey"] == rkey for r in STATE["bluesky"]):
                return self.send(500, {"error": "InternalServerError", "message": "Internal Server Error"},
                                 network="bluesky")
            reply = record.get("reply")
            if reply:
                for part in ("root", "parent"):
                    ref = reply.get(part, {})
                    if not any(r["uri"] == ref.get("uri") and r["cid"] == ref.get("cid") for r in STATE["bluesky"]):
                        return bad("Invalid app.bsky.feed.post record: reply %s does not exist" % part)
            uri = "at://%s/app.bsky.feed.post/%s" % (DID, rkey)
            cid = "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:52]
            STATE["bluesky"].append({"rkey": rkey, "uri": uri, "cid": cid, "value": record})
        if fault and fault["kind"] in ("drop_after_create", "hang_after_create"):
            if fault["kind"] == "hang_after_create":
                time.sleep(fault.get("seconds", 20))
            return self.drop("bluesky")
        self.send(200, {"uri": uri, "cid": cid, "commit": {"cid": "bafyreicommit", "rev": rkey},
                        "validationStatus": "valid"}, network="bluesky")


def public_post(p):
    out = {k: v for k, v in p.items() if k != "comments"}
    return out


def status_json(s):
    return {"id": s["id"], "created_at": s["created_at"], "in_reply_to_id": s["in_reply_to_id"],
            "visibility": s["visibility"], "content": "<p>%s</p>" % s["text"],
            "uri": "https://mastodon.example/users/protezionecivile/statuses/" + s["id"],
            "url": "https://mastodon.example/@protezionecivile/" + s["id"]}


def fb_error(message, kind, code, subcode=None):
    e = {"message": message, "type": kind, "code": code, "fbtrace_id": "ATestTrace01"}
    if subcode is not None:
        e["error_subcode"] = subcode
    return {"error": e}


def default_error(network, status):
    if network == "facebook":
        if status >= 500:
            return fb_error("An unexpected error has occurred. Please retry your request later.",
                            "OAuthException", 2)
        return fb_error("(#32) Page request limit reached", "OAuthException", 32)
    if network == "mastodon":
        return {"error": "Too many requests" if status == 429 else "Service Unavailable"}
    if status == 429:
        return {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    return {"error": "InternalServerError", "message": "Internal Server Error"}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fb-page", default="104000000000001")
    p.add_argument("--fb-token", default="EAAtestpagetoken")
    p.add_argument("--mastodon-token", default="mastodon-test-token")
    p.add_argument("--bsky-handle", default="protezionecivile.comune.example.it")
    p.add_argument("--bsky-password", default="abcd-efgh-ijkl-mnop")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
