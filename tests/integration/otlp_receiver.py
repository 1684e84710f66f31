#!/usr/bin/env python3
"""otlp_receiver.py — a tiny OTLP/HTTP receiver for the black-box tests.

Listens on 127.0.0.1:PORT; every POST /v1/traces body (OTLP JSON) is
appended to OUT as one line (the JSON re-serialised on one line), and
answered 200 "{}"; with --fail N the first N POSTs are answered with
--status (default 503) and not recorded.  Other paths get 404.  Each
request is also counted in OUT.count (one line per POST: the status
given) and OUT.headers (its Content-Type and X-Auth headers).  Python 3
standard library only.

Usage: otlp_receiver.py PORT OUT [--fail N] [--status CODE]
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"fail": 0, "status": 503, "out": None}


class Handler(BaseHTTPRequestHandler):
    """Records OTLP JSON export requests."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _answer(self, status, body=b"{}"):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        if self.path != "/v1/traces":
            self._answer(404)
            return
        with LOCK:
            failing = STATE["fail"] > 0
            if failing:
                STATE["fail"] -= 1
            status = STATE["status"] if failing else 200
            with open(STATE["out"] + ".count", "a", encoding="utf-8") as f:
                f.write("%d\n" % status)
            with open(STATE["out"] + ".headers", "a", encoding="utf-8") as f:
                f.write("%s %s\n" % (self.headers.get("Content-Type"), self.headers.get("X-Auth")))
            if not failing:
                try:
                    doc = json.loads(body)
                    line = json.dumps(doc, separators=(",", ":"))
                except ValueError as e:  # recorded so that a test sees it
                    line = json.dumps({"invalid": str(e), "ctype": self.headers.get("Content-Type")})
                with open(STATE["out"], "a", encoding="utf-8") as f:
                    f.write(line + "\n")
        self._answer(status)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    port, STATE["out"] = int(args[0]), args[1]
    i = 2
    while i < len(args):
        if args[i] == "--fail":
            STATE["fail"] = int(args[i + 1])
        elif args[i] == "--status":
            STATE["status"] = int(args[i + 1])
        i += 2
    open(STATE["out"], "a", encoding="utf-8").close()
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
