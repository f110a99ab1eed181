#!/usr/bin/env python3
"""A local Telegram Bot API server for the tests (Python 3 stdlib only).

Serves `POST /bot<TOKEN>/<method>` (any case, JSON or form body) with the
Bot API's real JSON shapes, and enforces Telegram's limits so the tests prove
the sender respects them:

- about 30 sendMessage per second overall (sliding one-second window) and
  one per second per chat; beyond that: a real 429 body with
  `parameters.retry_after`;
- chats configured as blocked / deactivated get the real 403 bodies, unknown
  chats the real 400 "chat not found";
- HTML parse mode is checked like Telegram does: an unescaped `<` or `&`
  is a 400 "can't parse entities";
- a wrong token gets 401 Unauthorized.

getUpdates long-polls a queue the test fills. Test control endpoints:

  POST /_test/updates  {"message": {"chat_id": 42, "text": "/start"}}
                       ("from_id": 7 for a group member; default: the chat id)
                       {"callback": {"chat_id": 42, "data": "...", "message_id": 7}}
                       {"my_chat_member": {"chat_id": 42, "status": "kicked"}}
  POST /_test/config   {"blocked": [...], "deactivated": [...], "not_found": [...]}
  POST /_test/force    {"chat_id": "42" | "*", "error_code": 429, "retry_after": 2, "times": 1}
  GET  /_test/sent     {"calls": [...], "rate_limited": N, "forced": N}

Prints `READY <port>` on stdout once listening.
"""

import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Allerta Test",
    "username": "allerta_test_bot",
}

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code",
    "pre", "span", "tg-spoiler", "blockquote", "tg-emoji",
}
TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def html_problem(text):
    """Why Telegram would refuse this HTML text, or None."""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = TAG.match(text, i)
            if not m or m.group(1).lower() not in ALLOWED_TAGS:
                return "Bad Request: can't parse entities: Unsupported start tag at byte offset %d" % i
            i = m.end()
            continue
        if c == "&":
            m = ENTITY.match(text, i)
            if not m:
                return ("Bad Request: can't parse entities: Can't find end of the entity "
                        "starting at byte offset %d" % i)
            i = m.end()
            continue
        i += 1
    return None


class State:
    def __init__(self, token, global_limit, chat_interval):
        self.token = token
        self.global_limit = global_limit
        self.chat_interval = chat_interval
        self.lock = threading.Condition()
        self.calls = []
        self.window = deque()  # monotonic times of accepted sendMessage
        self.last_by_chat = {}
        self.message_ids = {}
        self.messages = {}  # (chat_key, message_id) -> message
        self.blocked = set()
        self.deactivated = set()
        self.not_found = set()
        self.forced = []  # [chat_key, error_code, retry_after, times_left]
        self.rate_limited = 0
        self.forced_count = 0
        self.updates = []
        self.next_update_id = 1000
        self.start = time.monotonic()


STATE = None


def chat_object(chat):
    key = str(chat)
    if key.startswith("@"):
        return {"id": -1001000000001, "type": "channel", "title": "Canale allerta",
                "username": key[1:]}
    n = int(key)
    if n > 0:
        return {"id": n, "type": "private", "first_name": "Persona %d" % n}
    return {"id": n, "type": "supergroup", "title": "Gruppo %d" % -n}


def user_object(chat_id):
    return {"id": int(chat_id), "is_bot": False, "first_name": "Persona %s" % chat_id,
            "language_code": "it"}


def new_message(chat, text, reply_markup=None, from_bot=True):
    s = STATE
    key = str(chat)
    s.message_ids[key] = s.message_ids.get(key, 0) + 1
    chat_obj = chat_object(chat)
    msg = {"message_id": s.message_ids[key], "date": int(time.time()), "chat": chat_obj,
           "text": text}
    if chat_obj["type"] == "channel":
        msg["sender_chat"] = chat_obj
    elif from_bot:
        msg["from"] = BOT_USER
    else:
        msg["from"] = user_object(chat)
    if reply_markup:
        msg["reply_markup"] = reply_markup
    s.messages[(key, msg["message_id"])] = msg
    return msg


def error(code, description, retry_after=None):
    body = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return code, body


def ok(result):
    return 200, {"ok": True, "result": result}


def send_message(params):
    s = STATE
    chat = params.get("chat_id")
    text = params.get("text")
    if chat is None or text is None:
        return error(400, "Bad Request: message text is empty" if chat else "Bad Request: chat_id is empty")
    key = str(chat)
    now = time.monotonic()
    for f in s.forced:
        if f[3] > 0 and (f[0] == "*" or f[0] == key):
            f[3] -= 1
            s.forced_count += 1
            if f[1] == 429:
                return error(429, "Too Many Requests: retry after %d" % f[2], f[2])
            return error(f[1], "Internal Server Error" if f[1] >= 500 else "Bad Request: forced")
    while s.window and now - s.window[0] >= 1.0:
        s.window.popleft()
    last = s.last_by_chat.get(key)
    if last is not None and now - last < s.chat_interval:
        s.rate_limited += 1
        return error(429, "Too Many Requests: retry after 1", 1)
    if len(s.window) >= s.global_limit:
        s.rate_limited += 1
        return error(429, "Too Many Requests: retry after 1", 1)
    s.window.append(now)
    if key in s.blocked:
        return error(403, "Forbidden: bot was blocked by the user")
    if key in s.deactivated:
        return error(403, "Forbidden: user is deactivated")
    if key in s.not_found:
        return error(400, "Bad Request: chat not found")
    if not text.strip():
        return error(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        return error(400, "Bad Request: message is too long")
    if str(params.get("parse_mode", "")).upper() == "HTML":
        problem = html_problem(text)
        if problem:
            return error(400, problem)
    s.last_by_chat[key] = now
    return ok(new_message(chat, text, params.get("reply_markup")))


def edit_message(params, markup_only):
    s = STATE
    key = str(params.get("chat_id"))
    mid = params.get("message_id")
    msg = s.messages.get((key, mid))
    if msg is None:
        return error(400, "Bad Request: message to edit not found")
    if not markup_only:
        msg["text"] = params.get("text", "")
        msg.pop("reply_markup", None)
    if "reply_markup" in params:
        msg["reply_markup"] = params["reply_markup"]
    return ok(msg)


def get_updates(params):
    s = STATE
    offset = int(params.get("offset", 0) or 0)
    timeout = float(params.get("timeout", 0) or 0)
    limit = int(params.get("limit", 100) or 100)
    deadline = time.monotonic() + timeout
    # Called with the lock held (a Condition): wait releases it.
    while True:
        if offset:
            s.updates = [u for u in s.updates if u["update_id"] >= offset]
        if s.updates:
            return ok(s.updates[:limit])
        left = deadline - time.monotonic()
        if left <= 0:
            return ok([])
        s.lock.wait(left)


def handle_method(method, params):
    m = method.lower()
    if m == "getme":
        return ok(dict(BOT_USER, can_join_groups=True, can_read_all_group_messages=False,
                       supports_inline_queries=False, can_connect_to_business=False,
                       has_main_web_app=False))
    if m == "sendmessage":
        return send_message(params)
    if m == "getupdates":
        return get_updates(params)
    if m in ("answercallbackquery", "setmycommands", "deletewebhook"):
        return ok(True)
    if m == "editmessagetext":
        return edit_message(params, markup_only=False)
    if m == "editmessagereplymarkup":
        return edit_message(params, markup_only=True)
    return error(404, "Not Found")


def make_update(spec):
    s = STATE
    s.next_update_id += 1
    update = {"update_id": s.next_update_id}
    if "message" in spec:
        m = spec["message"]
        chat = m["chat_id"]
        msg = new_message(chat, m["text"], from_bot=False)
        if "from_id" in m:  # a member writing in a group
            msg["from"] = user_object(m["from_id"])
        if m["text"].startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(m["text"].split()[0])}]
        update["message"] = msg
    elif "callback" in spec:
        c = spec["callback"]
        key = str(c["chat_id"])
        msg = s.messages.get((key, c.get("message_id")))
        if msg is None:
            msg = {"message_id": c.get("message_id", 1), "date": int(time.time()),
                   "chat": chat_object(c["chat_id"]), "from": BOT_USER, "text": "?"}
        update["callback_query"] = {
            "id": "cb%d" % s.next_update_id,
            "from": user_object(c.get("from_id", c["chat_id"])),
            "message": msg,
            "chat_instance": "ci%s" % key,
            "data": c["data"],
        }
    elif "my_chat_member" in spec:
        c = spec["my_chat_member"]
        member = {"user": BOT_USER, "status": c["status"]}
        if c["status"] == "kicked":
            member["until_date"] = 0
        update["my_chat_member"] = {
            "chat": chat_object(c["chat_id"]),
            "from": user_object(c["chat_id"]),
            "date": int(time.time()),
            "old_chat_member": {"user": BOT_USER, "status": "member"},
            "new_chat_member": member,
        }
    s.updates.append(update)
    s.lock.notify_all()
    return update


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def read_params(self):
        length = int(self.headers.get("Content-Length", 0) or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        params = {}
        query = urllib.parse.urlparse(self.path).query
        for k, v in urllib.parse.parse_qsl(query):
            params[k] = v
        if raw:
            if "json" in ctype:
                params.update(json.loads(raw.decode("utf-8")))
            else:
                for k, v in urllib.parse.parse_qsl(raw.decode("utf-8")):
                    try:
                        params[k] = json.loads(v)
                    except ValueError:
                        params[k] = v
        return params

    def reply(self, code, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        path = urllib.parse.urlparse(self.path).path
        try:
            params = self.read_params()
        except (ValueError, UnicodeDecodeError):
            return self.reply(400, {"ok": False, "error_code": 400,
                                    "description": "Bad Request: invalid JSON"})
        s = STATE
        if path.startswith("/_test/"):
            return self.control(path[len("/_test/"):], params)
        m = re.match(r"^/bot([^/]+)/([A-Za-z]+)$", path)
        if not m:
            return self.reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = m.group(1), m.group(2)
        with s.lock:
            if token != s.token:
                code, body = error(401, "Unauthorized")
            else:
                code, body = handle_method(method, params)
            result = body.get("result")
            s.calls.append({"method": method, "params": params, "status": code,
                            "t": round(time.monotonic() - s.start, 4),
                            "description": body.get("description"),
                            "message_id": result.get("message_id")
                            if isinstance(result, dict) else None})
        self.reply(code, body)

    def control(self, what, params):
        s = STATE
        with s.lock:
            if what == "updates":
                return self.reply(200, make_update(params))
            if what == "config":
                s.blocked |= {str(c) for c in params.get("blocked", [])}
                s.deactivated |= {str(c) for c in params.get("deactivated", [])}
                s.not_found |= {str(c) for c in params.get("not_found", [])}
                return self.reply(200, {"ok": True})
            if what == "force":
                s.forced.append([str(params.get("chat_id", "*")), int(params.get("error_code", 429)),
                                 int(params.get("retry_after", 1)), int(params.get("times", 1))])
                return self.reply(200, {"ok": True})
            if what == "sent":
                return self.reply(200, {"calls": s.calls, "rate_limited": s.rate_limited,
                                        "forced": s.forced_count,
                                        "pending_updates": len(s.updates)})
        self.reply(404, {"error": "unknown control endpoint"})


def main():
    global STATE
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", required=True)
    p.add_argument("--global-limit", type=int, default=30)
    p.add_argument("--chat-interval", type=float, default=0.9)
    a = p.parse_args()
    STATE = State(a.token, a.global_limit, a.chat_interval)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
