#!/usr/bin/env python3
"""A real gRPC server for relais' tests (Debian's python3-grpcio, no protoc).

    grpc_server.py PORT [--tls CERT KEY] [--log FILE]

Listens on 127.0.0.1:PORT: HTTP/2 with prior knowledge (h2c, what relais
reaches as h2c://127.0.0.1:PORT), or with --tls HTTP/2 over TLS (ALPN h2,
relais' https://127.0.0.1:PORT).  Prints "ready PORT" on stdout once
listening.  Messages are raw bytes (identity serializers), service
"relais.test.Echo":

  Unary(b)         -> b; initial metadata "x-initial: i", trailing
                      metadata "x-trailer: v"
  ServerStream(n)  -> n messages b"stream <i>" (n an ASCII number; with
                      "n:ms" it sleeps ms between messages)
  ClientStream(*)  -> b"<count> messages <bytes> bytes"
  Bidi(*)          -> each message echoed as it arrives
  Fail(b)          -> aborts: b = b"CODE:details" (CODE a grpc.StatusCode
                      name), default NOT_FOUND "no such thing"; nothing
                      sent before, so a Trailers-Only response.  With a
                      leading "+" the headers (initial metadata "x-initial:
                      i") go first, the status then comes in trailers.
  Big(b)           -> 4 MiB (or b bytes, an ASCII number) of
                      payload(seed 9, size), see payload()
  Sleep(ms)        -> sleeps ms milliseconds (bounded at 30 s), then b"slept";
                      logs "SLEEP done", or "SLEEP cancelled after N ms"
                      when the call ended first (deadline, client cancel)
  Meta(b)          -> the request metadata the server saw, "k: v" lines
                      (sorted, grpc's own "user-agent" left out)

Every call is logged to --log (default stderr) as one line
"CALL <method> <peer>" so a test can count the connections relais opened.
"""
import argparse
import random
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "relais.test.Echo"
MAX_MSG = 64 * 1024 * 1024


def payload(seed, size):
    """The deterministic bytes that Big sends (the client computes the
    same to compare)."""
    return random.Random(seed).randbytes(size)


class Log:
    """Serialised line logging to a file or stderr."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else sys.stderr
        self.lock = threading.Lock()

    def line(self, s):
        with self.lock:
            self.f.write(s + "\n")
            self.f.flush()


def build_handlers(log):
    """The generic handler of relais.test.Echo (identity serializers)."""

    def called(name, ctx):
        log.line("CALL %s %s" % (name, ctx.peer()))

    def unary(req, ctx):
        called("Unary", ctx)
        ctx.send_initial_metadata((("x-initial", "i"),))
        ctx.set_trailing_metadata((("x-trailer", "v"),))
        return req

    def server_stream(req, ctx):
        called("ServerStream", ctx)
        text = req.decode() or "3"
        n, _, ms = text.partition(":")
        for i in range(int(n)):
            if ms and i:
                time.sleep(int(ms) / 1000.0)
            yield b"stream %d" % i

    def client_stream(it, ctx):
        called("ClientStream", ctx)
        count = total = 0
        for m in it:
            count += 1
            total += len(m)
        return b"%d messages %d bytes" % (count, total)

    def bidi(it, ctx):
        called("Bidi", ctx)
        for m in it:
            yield m

    def fail(req, ctx):
        called("Fail", ctx)
        text = req.decode()
        headers_first = text.startswith("+")
        code, _, details = text.lstrip("+").partition(":")
        if not code:
            code, details = "NOT_FOUND", "no such thing"
        if headers_first:
            ctx.send_initial_metadata((("x-initial", "i"),))
        ctx.abort(grpc.StatusCode[code], details)

    def big(req, ctx):
        called("Big", ctx)
        size = int(req.decode() or 4 * 1024 * 1024)
        return payload(9, size)

    def sleep(req, ctx):
        called("Sleep", ctx)
        ms = min(int(req.decode() or "1000"), 30000)
        start = time.monotonic()
        end = start + ms / 1000.0
        while time.monotonic() < end and ctx.is_active():
            time.sleep(0.01)
        if ctx.is_active():
            log.line("SLEEP done")
        else:
            log.line("SLEEP cancelled after %d ms" % ((time.monotonic() - start) * 1000))
        return b"slept"

    def meta(req, ctx):
        called("Meta", ctx)
        lines = sorted("%s: %s" % (k, v) for k, v in ctx.invocation_metadata()
                       if k != "user-agent")
        return ("\n".join(lines)).encode()

    ident = dict(request_deserializer=None, response_serializer=None)
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, **ident),
        "Big": grpc.unary_unary_rpc_method_handler(big, **ident),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, **ident),
        "Meta": grpc.unary_unary_rpc_method_handler(meta, **ident),
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--log")
    a = ap.parse_args()
    log = Log(a.log)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        options=[("grpc.max_receive_message_length", MAX_MSG),
                 ("grpc.max_send_message_length", MAX_MSG),
                 ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((build_handlers(log),))
    addr = "127.0.0.1:%d" % a.port
    if a.tls:
        with open(a.tls[0], "rb") as f:
            cert = f.read()
        with open(a.tls[1], "rb") as f:
            key = f.read()
        bound = server.add_secure_port(addr, grpc.ssl_server_credentials(((key, cert),)))
    else:
        bound = server.add_insecure_port(addr)
    if bound != a.port:
        sys.exit("grpc_server.py: cannot listen on %s" % addr)
    server.start()
    print("ready %d" % a.port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
