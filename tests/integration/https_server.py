#!/usr/bin/env python3
"""https_server.py — a real TLS file server for the tests (Python's ssl
module, i.e. OpenSSL), standard library only.

  https_server.py --port P --cert C --key K --dir D [--client-ca CA]

Serves the files of D over HTTPS on 127.0.0.1:P; with --client-ca, a
client certificate signed by CA is required (mutual TLS).  Each request is
logged on stderr as "GET /path".
"""
import argparse
import functools
import http.server
import ssl
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; logs one line per request."""

    def log_message(self, fmt, *args):  # noqa: D401 (stdlib signature)
        sys.stderr.write("%s %s\n" % (self.command, self.path))
        sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--client-ca")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.client_ca)
    handler = functools.partial(Handler, directory=a.dir)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
