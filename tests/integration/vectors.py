#!/usr/bin/env python3
"""vectors.py - replays the llhttp request vectors against a running relais.

Usage: vectors.py --port PORT --log WHOAMI_LOG [--dir VECTORS_DIR]
                  [--first N] [--count-file FILE] [--list]

The vectors (see vectors/README.md) are extracted exactly as
tests/unit/test_http1_vectors.c does: fenced `http` blocks followed by a
`log` block, lenient-* files and metas that are not "request" /
"request-finish" or that ask for skipBody are skipped, escapes decoded the
same way.  A log holding "error code=N" (N outside the pause codes 21-23)
means llhttp rejects the bytes.

Every runnable case is sent as-is on a fresh TCP connection to relais
(127.0.0.1:PORT); a second run ("with Host") inserts "Host: x" after the
first request line when the first request has no Host field, so that the
framing checks behind relais' "HTTP/1.1 requires Host" 400 are reached.
The answer is read until relais closes, 2 s pass, or the connection has
been quiet for 0.4 s after a complete response head.

Verdicts (one TAP line per case and run, numbered from --first):
  llhttp rejects: zero or more answers relayed from the backend (status
    < 400: complete valid requests before the bad bytes), then at most one
    error status in {400, 501, 505}, then relais closes the connection; the
    whoami --log file gains exactly one line per relayed answer (nothing
    else reached the backend; the exceptions are listed in KNOWN).
  llhttp accepts: the first bytes are a well-formed "HTTP/1.1 DDD reason"
    status line (any status), no reset; the only excuse for no answer is a
    request relais legitimately waits on (an incomplete head or body): then
    the connection must still be open (not closed without an answer).
The number of TAP lines and of failures is written to --count-file as
"N FAILED".  Standard library only.
"""

import argparse
import os
import re
import select
import socket
import sys
import time

TOTAL_TIMEOUT = 2.0  # seconds for one case
QUIET_AFTER_RESPONSE = 0.4  # quiet time that ends a read once answered
ACCEPTED_ERRORS = (400, 501, 505)  # statuses allowed for rejected bytes

# No deviation is tolerated: relais checks the framing of a chunked body
# it already holds before anything goes upstream (the body gate in
# src/proxy.c), so a rejected vector never reaches the backend.
KNOWN = {}


def hexval(c):
    """Value of a hex digit character, or -1."""
    if "0" <= c <= "9":
        return ord(c) - 48
    if "a" <= c <= "f":
        return ord(c) - 87
    if "A" <= c <= "F":
        return ord(c) - 55
    return -1


def decode(text):
    """Bytes of an `http` block (as decode() of test_http1_vectors.c).

    text is the block without its final newline; a backslash-newline joins
    lines, newlines become CRLF, then \\r \\n \\t \\f \\xHH.. \\ooo escapes.
    """
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            continue
        if ch == "\n":
            out += b"\r\n"
            i += 1
            continue
        if ch == "\\" and i + 1 < n:
            e = text[i + 1]
            if e in "rntf":
                out.append({"r": 13, "n": 10, "t": 9, "f": 12}[e])
                i += 2
                continue
            if e == "x" and i + 2 < n and hexval(text[i + 2]) >= 0:
                v = 0
                i += 2
                while i < n and hexval(text[i]) >= 0:
                    v = (v << 4) | hexval(text[i])
                    i += 1
                out.append(v & 0xFF)
                continue
            if "0" <= e <= "7":
                v = 0
                i += 1
                k = 0
                while k < 3 and i < n and "0" <= text[i] <= "7":
                    v = v * 8 + ord(text[i]) - 48
                    i += 1
                    k += 1
                out.append(v & 0xFF)
                continue
        out.append(ord(ch))
        i += 1
    return bytes(out)


def parse_file(path, name):
    """Yields dicts (name, heading, skip, rejected, code, data) of a file."""
    with open(path, "rb") as f:
        raw = f.read().decode("latin-1")  # one char per byte, as in C
    heading = ""
    mtype = ""
    have_meta = False
    skip_body = False
    state = 0  # 1 http block, 2 log block, 3 other block
    blk = None  # lines of the http block
    logl = None  # lines of the log block
    for line in raw.split("\n"):
        if state:
            if line.startswith("```"):
                if state == 1:
                    state = 0
                elif state == 2 and blk is not None:
                    log = "\n".join(logl)
                    m = re.search(r"error code=(-?\d+)", log)
                    code = int(m.group(1)) if m else -1
                    rejected = bool(m) and not 21 <= code <= 23
                    skip = None
                    if (not have_meta or mtype not in ("request", "request-finish")
                            or skip_body):
                        skip = 'meta type "%s"%s' % (mtype, " skipBody" if skip_body else "")
                    text = "\n".join(blk)
                    # the C harness drops the final newline of the block
                    yield {
                        "file": name,
                        "heading": heading,
                        "skip": skip,
                        "rejected": rejected,
                        "pauses": bool(m) and not rejected,
                        "code": code,
                        "data": decode(text),
                    }
                    blk = None
                    have_meta = False
                    skip_body = False
                    state = 0
                else:
                    state = 0
            elif state == 1:
                blk.append(line)
            elif state == 2:
                logl.append(line)
            continue
        if line.startswith("```http"):
            blk = []
            state = 1
        elif line.startswith("```log"):
            logl = []
            state = 2
        elif line.startswith("```"):
            state = 3
        elif line.startswith("#"):
            heading = line.lstrip("# ").replace("#", "+")[:255]
            heading = heading.encode("latin-1").decode("utf-8", "replace")
        elif "<!-- meta=" in line:
            m = re.search(r'"type"[^"]*"([^"]*)"', line)
            mtype = m.group(1) if m else ""
            skip_body = '"skipBody": true' in line or '"skipBody":true' in line
            have_meta = True


def cases(directory):
    """All cases of the directory, files sorted, lenient-* left out."""
    names = sorted(n for n in os.listdir(directory)
                   if n.endswith(".md") and len(n) >= 4 and not n.startswith("lenient"))
    for n in names:
        yield from parse_file(os.path.join(directory, n), n)


def add_host(data):
    """data with "Host: x" after the first request line (leading CRLFs
    skipped), or None when the first head already has a Host field or
    there is no complete request line."""
    p = 0
    while data[p:p + 2] == b"\r\n":
        p += 2
    head_end = data.find(b"\r\n\r\n", p)
    head = data[p:head_end if head_end >= 0 else len(data)]
    if re.search(rb"\r\n[Hh][Oo][Ss][Tt][ \t]*:", head):
        return None
    e = data.find(b"\r\n", p)
    if e < 0:
        return None
    e += 2
    return data[:e] + b"Host: x\r\n" + data[e:]


class Answer:
    """What relais answered on one connection."""

    def __init__(self):
        self.data = b""  # every byte received
        self.end = "timeout"  # "closed", "reset" or "timeout"
        self.statuses = []  # status codes of the response heads parsed
        self.first_line = None  # the first line received (bytes)
        self.malformed = None  # why the byte stream is not HTTP/1.1


def parse_responses(ans):
    """Fills ans.statuses from ans.data: consecutive responses framed by
    Content-Length / chunked / no body (1xx, 204, 304).  A response with
    no length ends the parse (close-delimited or HEAD answer)."""
    d = ans.data
    pos = 0
    ans.statuses = []
    eol = d.find(b"\r\n")
    if eol >= 0:
        ans.first_line = d[:eol]
    elif d:
        ans.first_line = d
    while pos < len(d):
        he = d.find(b"\r\n\r\n", pos)
        if he < 0:
            if ans.end != "timeout" or len(d) - pos > 65536:
                ans.malformed = "incomplete response head"
            return
        head = d[pos:he].decode("latin-1")
        lines = head.split("\r\n")
        m = re.fullmatch(r"HTTP/1\.1 ([1-9]\d\d) [^\r\n\x00-\x08]*", lines[0])
        if not m:
            ans.malformed = "bad status line %r" % lines[0][:80]
            return
        st = int(m.group(1))
        ans.statuses.append(st)
        fields = {}
        for fl in lines[1:]:
            fm = re.fullmatch(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*", fl)
            if not fm:
                ans.malformed = "bad header line %r" % fl[:80]
                return
            fields.setdefault(fm.group(1).lower(), []).append(fm.group(2))
        pos = he + 4
        if st < 200 or st in (204, 304):
            continue
        if "transfer-encoding" in fields:
            # chunked: walk the chunks
            while True:
                le = d.find(b"\r\n", pos)
                if le < 0:
                    return
                try:
                    size = int(d[pos:le].split(b";")[0], 16)
                except ValueError:
                    ans.malformed = "bad chunk size %r" % d[pos:le][:40]
                    return
                pos = le + 2
                if size == 0:
                    te = d.find(b"\r\n\r\n", pos - 2)
                    if te < 0:
                        return
                    pos = te + 4
                    break
                pos += size + 2
                if pos > len(d):
                    return
        elif "content-length" in fields:
            try:
                pos += int(fields["content-length"][0])
            except ValueError:
                ans.malformed = "bad Content-Length"
                return
        else:
            return


def exchange(port, data):
    """Sends data on a new connection to relais; returns an Answer."""
    ans = Answer()
    s = socket.create_connection(("127.0.0.1", port), timeout=TOTAL_TIMEOUT)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # relais may close early; read what it answered
        start = time.monotonic()
        last = start
        s.setblocking(False)
        while True:
            now = time.monotonic()
            left = start + TOTAL_TIMEOUT - now
            if ans.data and ans.statuses:
                left = min(left, last + QUIET_AFTER_RESPONSE - now)
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if not r:
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                ans.end = "reset"
                break
            except BlockingIOError:
                continue
            if not chunk:
                ans.end = "closed"
                break
            ans.data += chunk
            last = time.monotonic()
            parse_responses(ans)
    finally:
        s.close()
    parse_responses(ans)
    return ans


def log_lines(path):
    """Lines of the backend's request log."""
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\n")[:-1]
    except FileNotFoundError:
        return []


def wait_log_quiet(path, count):
    """Waits (up to 0.5 s) until the log has at least count lines."""
    deadline = time.monotonic() + 0.5
    lines = log_lines(path)
    while len(lines) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        lines = log_lines(path)
    return lines


def judge(case, ans, added, known=None):
    """(ok, description) for one run of a case; added = log lines added;
    known: the reason one extra backend request is tolerated, or None."""
    st = ans.statuses
    desc = "statuses %s, %s" % (st or "none", ans.end)
    if added:
        desc += ", backend got %s" % [a.decode("latin-1")[:60] for a in added]
    if ans.malformed:
        return False, desc + ", malformed answer: " + ans.malformed
    if case["rejected"]:
        relayed = [s for s in st if s < 400]
        errors = [s for s in st if s >= 400]
        if errors and st[-1] < 400:
            return False, desc + ", answered again after an error"
        if len(errors) > 1:
            return False, desc + ", several errors"
        if errors and errors[0] not in ACCEPTED_ERRORS:
            return False, desc + ", error %d not in %s" % (errors[0], ACCEPTED_ERRORS)
        if ans.end == "timeout":
            return False, desc + ", relais did not close the connection"
        if ans.end == "reset" and not st:
            return False, desc + ", reset without an answer"
        if known and errors == [400] and len(added) == len(relayed) + 1:
            return True, desc + " (known: %s)" % known
        if len(added) != len(relayed):
            return False, desc + ", %d request(s) reached the backend for %d relayed answer(s)" % (
                len(added), len(relayed))
        return True, desc
    # llhttp accepts
    if ans.first_line is not None and not re.fullmatch(
            rb"HTTP/1\.1 [1-9]\d\d [^\r\n\x00-\x08]*", ans.first_line):
        return False, desc + ", bad status line %r" % ans.first_line[:60]
    if not st:
        if ans.end == "reset":
            return False, desc + ", reset without an answer"
        if ans.end == "closed":
            return False, desc + ", closed without an answer"
        return True, desc + " (relais waits for more bytes)"
    return True, desc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True, help="whoami --log file")
    ap.add_argument("--dir", default=os.environ.get("RELAIS_VECTORS") or os.path.join(
        os.environ.get("RELAIS_SRCDIR", "."), "..", "shared", "vectors", "llhttp"))
    ap.add_argument("--first", type=int, default=1, help="first TAP number")
    ap.add_argument("--count-file")
    ap.add_argument("--list", action="store_true", help="list the cases only")
    ap.add_argument("--only", help="run cases whose name contains this")
    a = ap.parse_args()

    n = a.first - 1
    strict = os.environ.get("RELAIS_VECTORS_STRICT") == "1"
    failed = 0
    totals = {"rejected": 0, "accepted": 0, "skipped": 0}
    statuses = {}

    def tap(ok, text, directive=None):
        """Prints one TAP line; directive: "SKIP ..." or None."""
        nonlocal n, failed
        n += 1
        if not ok and not directive:
            failed += 1
        text = text.replace("#", "+").replace("\\", "/")  # no TAP directives
        print("%s %d - %s%s" % ("ok" if ok else "not ok", n, text,
                                " # " + directive if directive else ""), flush=True)

    if not os.path.isdir(a.dir):
        tap(False, "vectors directory %s" % a.dir)
    else:
        print("# vectors: %s" % os.path.abspath(a.dir), flush=True)
        for case in cases(a.dir):
            name = "%s: %s" % (case["file"], case["heading"])
            if a.only and a.only not in name:
                continue
            if case["skip"]:
                totals["skipped"] += 1
                # out of scope by the vectors' README: noted, not a test
                print("# not applicable: %s (%s)" % (name, case["skip"]))
                continue
            if a.list:
                print("# %s %s %r" % ("REJ" if case["rejected"] else "ACC", name, case["data"]))
                continue
            what = ("llhttp rejects (code %d)" % case["code"] if case["rejected"]
                    else "llhttp accepts" + (" (pauses)" if case["pauses"] else ""))
            totals["rejected" if case["rejected"] else "accepted"] += 1
            runs = [("", case["data"])]
            hosted = add_host(case["data"])
            if hosted is not None:
                runs.append(("; with Host", hosted))
            for label, data in runs:
                before = len(wait_log_quiet(a.log, 0))
                try:
                    ans = exchange(a.port, data)
                except OSError as e:
                    tap(False, "%s%s - %s: connect: %s" % (name, label, what, e))
                    continue
                time.sleep(0.05)  # let a forwarded request reach the log
                added = log_lines(a.log)[before:]
                known = None
                ok, desc = judge(case, ans, added, known)
                key = ("rej" if case["rejected"] else "acc") + label
                first = ans.statuses[0] if ans.statuses else ans.end
                statuses.setdefault(key, {}).setdefault(first, 0)
                statuses[key][first] += 1
                tap(ok, "%s%s - %s: %s" % (name, label, what, desc))
                if not ok:
                    print("#   sent: %r" % data[:300])
                    print("#   got:  %r" % ans.data[:300])
        print("# cases: rejected by llhttp %d, accepted %d, skipped %d" % (
            totals["rejected"], totals["accepted"], totals["skipped"]))
        for key in sorted(statuses):
            print("# first answer (%s): %s" % (key, ", ".join(
                "%s x%d" % (k, v) for k, v in sorted(statuses[key].items(), key=str))))
        if totals["rejected"] + totals["accepted"] == 0 and not a.only:
            tap(False, "found vector cases")
    if a.count_file:
        with open(a.count_file, "w") as f:
            f.write("%d %d\n" % (n - a.first + 1, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
