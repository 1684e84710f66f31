#!/usr/bin/env python3
"""Servers and clients for test_tcp.sh / test_udp.sh (standard library only).

Servers (run in the background, print nothing, stop on SIGTERM):
  line PORT NAME               reads a line, answers "NAME:<line>", closes
  echo PORT                    echoes every byte until EOF, then closes
  banner PORT NAME             sends "NAME-banner\\n" first, then as line
  tls PORT NAME CERT KEY [ALPN,...]  TLS, then as line (ALPN names offered)
  pp PORT                      reads a PROXY v1/v2 header and answers
                               "v1 <line>" / "v2 <hex>", then "|<line>"
  udpecho PORT NAME            answers each datagram with "NAME:<data>"
Clients (print what they got):
  send PORT DATA [SRCIP]       sends DATA, half-closes, prints the answer
  stream PORT NBYTES           sends NBYTES while reading, prints
                               "<sent sha> <received sha> <received bytes>"
  tlsline PORT SNI CA LINE [ALPN]  TLS client: prints "<CN>|<answer>"
  count PORT N                 N connections sending "x\\n": prints
                               "NAME count" lines (sorted)
  hold PORT N SECONDS          N connections each sending "h\\n" and
                               reading the answer, kept open SECONDS
  ppsend PORT VERSION SRC REQ  PROXY header (src SRC:4242) then REQ;
                               prints the answer
  udp PORT DATA [N]            N datagrams, prints each answer
"""
import binascii
import hashlib
import os
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

TIMEOUT = 10


def readline(sock):
    """Reads up to and including a newline (or EOF); at most 64 KiB."""
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < 65536:
        b = sock.recv(1)
        if not b:
            break
        buf += b
    return buf


def readall(sock):
    """Reads until EOF (bounded by the socket timeout)."""
    out = b""
    while True:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not b:
            break
        out += b
    return out


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port, handler):
    srv = Server(("127.0.0.1", port), handler)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


def server_main(mode, args):
    if mode == "udpecho":
        port, name = int(args[0]), args[1].encode()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
        while True:
            data, addr = s.recvfrom(65535)
            s.sendto(name + b":" + data, addr)
    port = int(args[0])

    class H(socketserver.BaseRequestHandler):
        def handle(self):
            sock = self.request
            sock.settimeout(TIMEOUT)
            try:
                if mode == "line":
                    line = readline(sock)
                    sock.sendall(args[1].encode() + b":" + line)
                elif mode == "banner":
                    sock.sendall(args[1].encode() + b"-banner\n")
                    line = readline(sock)
                    sock.sendall(args[1].encode() + b":" + line)
                elif mode == "echo":
                    while True:
                        b = sock.recv(65536)
                        if not b:
                            break
                        sock.sendall(b)
                elif mode == "tls":
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(args[2], args[3])
                    if len(args) > 4:
                        ctx.set_alpn_protocols(args[4].split(","))
                    t = ctx.wrap_socket(sock, server_side=True)
                    line = readline(t)
                    proto = t.selected_alpn_protocol() or "-"
                    t.sendall(("%s[%s]:" % (args[1], proto)).encode() + line)
                    t.close()
                    return
                elif mode == "pp":
                    first = sock.recv(16, socket.MSG_PEEK)
                    if first.startswith(b"PROXY "):
                        hdr = readline(sock)
                        out = b"v1 " + hdr.rstrip(b"\r\n")
                    else:
                        fixed = b""
                        while len(fixed) < 16:
                            fixed += sock.recv(16 - len(fixed))
                        n = struct.unpack("!H", fixed[14:16])[0]
                        rest = b""
                        while len(rest) < n:
                            rest += sock.recv(n - len(rest))
                        out = b"v2 " + binascii.hexlify(fixed + rest)
                    line = readline(sock)
                    sock.sendall(out + b"|" + line)
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    serve(port, H)


def connect(port, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def pp_header(version, src, dst_port):
    if version == 1:
        return ("PROXY TCP4 %s 127.0.0.1 4242 %d\r\n" % (src, dst_port)).encode()
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 4242, dst_port)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def client_main(mode, args):
    port = int(args[0])
    if mode == "send":
        s = connect(port, args[2] if len(args) > 2 else None)
        out = b""
        try:
            s.sendall(args[1].encode().decode("unicode_escape").encode("latin-1"))
            s.shutdown(socket.SHUT_WR)
            out = readall(s)
        except OSError:
            pass  # refused: closed (often with a reset)
        sys.stdout.write(out.decode("latin-1") if out else "(closed)")
    elif mode == "stream":
        n = int(args[1])
        data = os.urandom(n)
        s = connect(port)
        got = []

        def reader():
            got.append(readall(s))
        t = threading.Thread(target=reader)
        t.start()
        view = memoryview(data)
        while view:
            k = s.send(view[:65536])
            view = view[k:]
        s.shutdown(socket.SHUT_WR)
        t.join(60)
        r = got[0] if got else b""
        print(hashlib.sha256(data).hexdigest()[:16], hashlib.sha256(r).hexdigest()[:16], len(r))
    elif mode == "tlsline":
        sni, ca, line = args[1], args[2], args[3]
        ctx = ssl.create_default_context(cafile=ca)
        if len(args) > 4:
            ctx.set_alpn_protocols(args[4].split(","))
        s = connect(port)
        try:
            t = ctx.wrap_socket(s, server_hostname=sni)
            cert = t.getpeercert()
            cn = [v for f in cert["subject"] for k, v in f if k == "commonName"][0]
            t.sendall(line.encode() + b"\n")
            sys.stdout.write(cn + "|" + readall(t).decode())
        except (OSError, ssl.SSLError) as e:
            sys.stdout.write("ERR %s" % e.__class__.__name__)
    elif mode == "count":
        counts = {}
        for _ in range(int(args[1])):
            s = connect(port)
            s.sendall(b"x\n")
            ans = readall(s).decode()
            s.close()
            name = ans.split(":")[0] if ans else "(none)"
            counts[name] = counts.get(name, 0) + 1
        for k in sorted(counts):
            print(k, counts[k])
    elif mode == "hold":
        socks = []
        for i in range(int(args[1])):
            s = connect(port)
            s.sendall(b"h\n")
            socks.append(s)
        for s in socks:
            print(readline(s).decode().strip() or "(closed)")
        sys.stdout.flush()
        time.sleep(float(args[2]))
    elif mode == "ppsend":
        version, src, req = int(args[1]), args[2], args[3]
        s = connect(port)
        out = b""
        try:
            s.sendall(pp_header(version, src, port) + req.encode().decode("unicode_escape").encode())
            s.shutdown(socket.SHUT_WR)
            out = readall(s)
        except OSError:
            pass  # refused: closed (often with a reset)
        sys.stdout.write(out.decode("latin-1") if out else "(closed)")
    elif mode == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        for _ in range(int(args[2]) if len(args) > 2 else 1):
            s.sendto(args[1].encode(), ("127.0.0.1", port))
            try:
                print(s.recvfrom(65535)[0].decode())
            except socket.timeout:
                print("(timeout)")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode in ("line", "echo", "banner", "tls", "pp", "udpecho"):
        server_main(mode, args)
    else:
        client_main(mode, args)


if __name__ == "__main__":
    main()
