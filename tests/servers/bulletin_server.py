#!/usr/bin/env python3
"""A local HTTP server for the `allerta watch` tests (Python 3 stdlib only).

Serves the files of --dir at /files/<name>, and misbehaves on purpose:

  /error/500   answers HTTP 500
  /slow        answers after --slow seconds (longer than the source timeout)
  /garbage     answers 200 with an HTML page instead of a bulletin

Counts requests per path: GET /_test/hits returns {"<path>": n}.
Prints `READY <port>` on stdout once listening.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HITS = {}
LOCK = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--slow", type=float, default=30.0)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, body, ctype="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self):
            if self.path == "/_test/hits":
                with LOCK:
                    return self.reply(200, json.dumps(HITS))
            with LOCK:
                HITS[self.path] = HITS.get(self.path, 0) + 1
            if self.path == "/error/500":
                return self.reply(500, "internal error", "text/plain")
            if self.path == "/slow":
                time.sleep(args.slow)
                return self.reply(200, "{}")
            if self.path == "/garbage":
                return self.reply(200, "<html><body>Bad gateway</body></html>", "text/html")
            if self.path.startswith("/files/"):
                name = os.path.basename(self.path[len("/files/"):])
                try:
                    with open(os.path.join(args.dir, name), "rb") as f:
                        return self.reply(200, f.read())
                except OSError:
                    return self.reply(404, "not found", "text/plain")
            return self.reply(404, "not found", "text/plain")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
