#!/usr/bin/env python3
"""gRPC client of tests/servers/grpc_server.py (Debian's python3-grpcio),
for test_grpc.sh: one command per run, its result printed as one line (or
a few) that the test compares exactly.

    grpc_client.py TARGET [--ca PEM] [--authority NAME] [--timeout S] CMD [ARG...]

TARGET is host:port (relais or the server itself).  Without --ca the
channel is h2c (prior knowledge); with --ca it is TLS (ALPN h2) verified
against that CA, the certificate being checked for --authority.
--authority sets :authority (and SNI with --ca).

Commands (service relais.test.Echo):
  unary TEXT          "reply=TEXT initial=x-initial:i trailer=x-trailer:v"
  sstream N           the N messages joined with "|"
  cstream SIZE...     one message per SIZE (bytes "c"), the server's reply
  bidi MSG...         ping-pong: each message sent only once the previous
                      echo came back; the echoes joined with "|"
  fail [[+]CODE:DETAILS] "code=NAME details=DETAILS" as the client sees them
                      ("+": the server sends its headers first)
  big [SIZE]          "bytes=N exact=yes|no" (4 MiB by default)
  upload SIZE         echo of SIZE random bytes: "bytes=N exact=yes|no"
  many N              N unary calls on one channel, each checked:
                      "N calls ok" or the first failure
  deadline MS T       Sleep(MS) with a deadline of T seconds: the status
                      (DEADLINE_EXCEEDED expected), then one more unary
                      call on the same channel: "code=NAME then reply=after"
  cancel MS T         Sleep(MS) without a deadline, cancelled by the
                      client after T seconds (RST_STREAM), then one more
                      unary call: "cancelled=True then reply=after"
  meta                the request metadata the server saw (Meta), raw
Exit status 0 when the command ran (whatever the gRPC status), 1 on a
usage error.
"""
import argparse
import random
import sys
import threading
import time

import grpc

SERVICE = "/relais.test.Echo/"
MAX_MSG = 64 * 1024 * 1024


def payload(seed, size):
    """Same generator as grpc_server.py's payload()."""
    return random.Random(seed).randbytes(size)


def channel(a):
    """The channel for the options: h2c or TLS, authority overridden."""
    opts = [("grpc.max_receive_message_length", MAX_MSG),
            ("grpc.max_send_message_length", MAX_MSG),
            ("grpc.enable_retries", 0)]
    if a.authority:
        opts.append(("grpc.default_authority", a.authority))
    if a.ca:
        with open(a.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        if a.authority:
            opts.append(("grpc.ssl_target_name_override", a.authority))
        return grpc.secure_channel(a.target, creds, options=opts)
    return grpc.insecure_channel(a.target, options=opts)


def xmeta(md):
    """The x- entries of a metadata sequence as "k:v" joined with ","."""
    return ",".join("%s:%s" % (k, v) for k, v in (md or ()) if k.startswith("x-"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("--ca")
    ap.add_argument("--authority")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("cmd")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    ch = channel(a)
    uu = lambda m: ch.unary_unary(SERVICE + m)
    to = a.timeout
    cmd, args = a.cmd, a.args

    try:
        if cmd == "unary":
            resp, call = uu("Unary").with_call(" ".join(args).encode(), timeout=to)
            print("reply=%s initial=%s trailer=%s" % (resp.decode(), xmeta(call.initial_metadata()),
                                                       xmeta(call.trailing_metadata())))
        elif cmd == "sstream":
            it = ch.unary_stream(SERVICE + "ServerStream")(args[0].encode(), timeout=to)
            print("|".join(m.decode() for m in it))
        elif cmd == "cstream":
            msgs = [b"c" * int(s) for s in args]
            print(ch.stream_unary(SERVICE + "ClientStream")(iter(msgs), timeout=to).decode())
        elif cmd == "bidi":
            got = []
            echoed = threading.Semaphore(0)

            def requests():
                for i, m in enumerate(args):
                    if i and not echoed.acquire(timeout=to):
                        return  # no echo in time: end the stream, the check fails
                    yield m.encode()

            for m in ch.stream_stream(SERVICE + "Bidi")(requests(), timeout=to):
                got.append(m.decode())
                echoed.release()
            print("|".join(got))
        elif cmd == "fail":
            try:
                uu("Fail")(" ".join(args).encode(), timeout=to)
                print("code=OK")
            except grpc.RpcError as e:
                print("code=%s details=%s" % (e.code().name, e.details()))
        elif cmd == "big":
            size = int(args[0]) if args else 4 * 1024 * 1024
            resp = uu("Big")(str(size).encode(), timeout=to)
            print("bytes=%d exact=%s" % (len(resp), "yes" if resp == payload(9, size) else "no"))
        elif cmd == "upload":
            body = payload(11, int(args[0]))
            resp = uu("Unary")(body, timeout=to)
            print("bytes=%d exact=%s" % (len(resp), "yes" if resp == body else "no"))
        elif cmd == "many":
            n = int(args[0])
            stub = uu("Unary")
            for i in range(n):
                want = b"call %d" % i
                resp = stub(want, timeout=to)
                if resp != want:
                    print("call %d: got %r" % (i, resp[:40]))
                    return 0
            print("%d calls ok" % n)
        elif cmd == "deadline":
            try:
                uu("Sleep")(args[0].encode(), timeout=float(args[1]))
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            resp = uu("Unary")(b"after", timeout=to)
            print("code=%s then reply=%s" % (code, resp.decode()))
        elif cmd == "cancel":
            fut = uu("Sleep").future(args[0].encode())  # no deadline: no grpc-timeout
            time.sleep(float(args[1]))
            fut.cancel()
            resp = uu("Unary")(b"after", timeout=to)
            print("cancelled=%s then reply=%s" % (fut.cancelled(), resp.decode()))
        elif cmd == "meta":
            print(uu("Meta")(b"", timeout=to).decode())
        else:
            ap.error("unknown command %s" % cmd)
    except grpc.RpcError as e:
        print("rpc error: code=%s details=%s" % (e.code().name, e.details()))
    finally:
        ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
