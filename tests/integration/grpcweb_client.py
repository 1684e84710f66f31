#!/usr/bin/env python3
"""A gRPC-Web client over HTTP/1.1 (python3's http.client), for
test_mw_grpcweb.sh: it writes the request bytes itself (frames, base64 for
the text mode) and reports the response exactly.

    grpcweb_client.py PORT HOST PATH [options]

Request (to 127.0.0.1:PORT, Host: HOST, POST PATH unless --method):
  --msg TEXT        one message frame (flag 0, 4-byte length, TEXT); repeat
  --random N        one message frame of N pseudo-random bytes (seed 11)
  --text            text mode: the body base64-encoded; Content-Type
                    application/grpc-web-text unless --ctype
  --split           text mode: each frame base64-encoded on its own (padded
                    chunks one after the other, as PROTOCOL-WEB allows)
  --raw-body S      send exactly S as the body instead of frames
  --ctype CT        Content-Type (default application/grpc-web+proto)
  --origin O        an Origin header
  --header 'K: V'   one more request header; repeat
  --chunk N         body sent chunked in pieces of N bytes, the connection
                    flushed after each (default: Content-Length, one write)
  --method M        another method (OPTIONS for a preflight: no body)
Output (stdout):
  status N
  h name: value      each response header, names lower-cased, in order
  then with --frames, the body parsed (after base64 decoding in text mode):
  DATA n=LEN sha=FIRST-16-HEX-OF-SHA256 [text=...]   a message frame
  TRAILER 'name: value\\r\\n...'                        the trailer frame
  ERROR what                                          a malformed body
  with --times, "at MS" after each frame: when its last byte arrived, in ms
  after the request was sent
  --out FILE writes the raw response body (as received, de-chunked).
"""
import argparse
import base64
import hashlib
import http.client
import random
import struct
import sys
import time


def frame(flag, data):
    """One gRPC(-Web) frame."""
    return bytes([flag]) + struct.pack(">I", len(data)) + data


def b64parts(raw):
    """Decodes base64 text made of padded parts one after the other (the
    gRPC-Web text format).  Returns the bytes and, for each byte, the index
    in raw of the last character of its 4-character group.  ValueError
    when the text is not that."""
    out, where, i = bytearray(), [], 0
    while i < len(raw):
        pad = raw.find(b"=", i)
        end = len(raw) if pad < 0 else i + ((pad - i) // 4 + 1) * 4
        part = raw[i:end]
        if len(part) % 4:
            raise ValueError("a part of %d characters at %d" % (len(part), i))
        data = base64.b64decode(part, validate=True)
        out += data
        where += [i + (k // 3) * 4 + 3 for k in range(len(data))]
        i = end
    return bytes(out), where


def parse(body, times):
    """Lines describing the frames of a (binary) gRPC-Web body; times[i]
    is when body byte i arrived (ms), or None."""
    out, i = [], 0
    while i < len(body):
        if len(body) - i < 5:
            out.append("ERROR %d trailing bytes" % (len(body) - i))
            break
        flag, n = body[i], struct.unpack(">I", body[i + 1:i + 5])[0]
        data = body[i + 5:i + 5 + n]
        if len(data) < n:
            out.append("ERROR frame of %d bytes cut at %d" % (n, len(data)))
            break
        if flag & 0x80:
            line = "TRAILER %r" % data.decode("latin-1")
        else:
            line = "DATA n=%d sha=%s" % (n, hashlib.sha256(data).hexdigest()[:16])
            if n <= 64 and all(32 <= c < 127 for c in data):
                line += " text=%s" % data.decode()
        if times is not None:
            line += " at %d" % times[i + 5 + n - 1] if n else " at %d" % times[i + 4]
        out.append(line)
        i += 5 + n
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("host")
    ap.add_argument("path")
    ap.add_argument("--msg", action="append", default=[])
    ap.add_argument("--random", type=int, action="append", default=[])
    ap.add_argument("--text", action="store_true")
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--raw-body")
    ap.add_argument("--ctype")
    ap.add_argument("--origin")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--chunk", type=int, default=0)
    ap.add_argument("--method", default="POST")
    ap.add_argument("--frames", action="store_true")
    ap.add_argument("--times", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()

    frames = [frame(0, m.encode()) for m in a.msg]
    frames += [frame(0, random.Random(11).randbytes(n)) for n in a.random]
    if a.raw_body is not None:
        body = a.raw_body.encode()
    elif a.text and a.split:
        body = b"".join(base64.b64encode(f) for f in frames)
    elif a.text:
        body = base64.b64encode(b"".join(frames))
    else:
        body = b"".join(frames)
    ctype = a.ctype or ("application/grpc-web-text" if a.text else "application/grpc-web+proto")

    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    conn.putrequest(a.method, a.path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", a.host)
    if a.method != "OPTIONS":
        conn.putheader("Content-Type", ctype)
        conn.putheader("X-Grpc-Web", "1")
    if a.origin:
        conn.putheader("Origin", a.origin)
    for h in a.header:
        k, _, v = h.partition(":")
        conn.putheader(k.strip(), v.strip())
    if a.method == "OPTIONS":
        conn.putheader("Content-Length", "0")
        conn.endheaders()
    elif a.chunk:
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(body), a.chunk):
                part = body[i:i + a.chunk]
                conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
                time.sleep(0.002)
            conn.send(b"0\r\n\r\n")
        except OSError as e:  # answered (and closed) before the whole body was sent
            print("# send: %s" % e, file=sys.stderr)
    else:
        conn.putheader("Content-Length", str(len(body)))
        try:
            conn.endheaders(body)
        except OSError as e:
            print("# send: %s" % e, file=sys.stderr)
    t0 = time.monotonic()
    try:
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as e:
        print("status 0")
        print("ERROR no response: %s" % e)
        return 0
    print("status %d" % resp.status)
    for k, v in resp.getheaders():
        print("h %s: %s" % (k.lower(), v))
    raw, arrivals = b"", []
    while True:
        piece = resp.read1(65536)
        if not piece:
            break
        raw += piece
        arrivals += [int((time.monotonic() - t0) * 1000)] * len(piece)
    conn.close()
    if a.out:
        with open(a.out, "wb") as f:
            f.write(raw)
    if a.frames:
        binary, times = raw, (arrivals if a.times else None)
        if a.text:
            try:
                binary, where = b64parts(raw)
            except ValueError as e:
                print("ERROR not base64: %s" % e)
                return 0
            if times is not None:  # a decoded byte arrived with its group's last character
                times = [arrivals[w] for w in where]
        for line in parse(binary, times):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
