#!/usr/bin/env python3
"""loadgen.py — bounded HTTP/1.1 keep-alive load for the hot-reload test.

Python 3 standard library only.  CONNS threads each hold one keep-alive
connection (http.client) to 127.0.0.1:PORT and send GET PATH in a loop,
cycling through the given Host headers.  Every answer is recorded: host,
status, the X-Config-Version header and the X-Whoami-Name header (or the
error when there was no answer).  The run stops at the first of: MAX
requests in total, SECONDS elapsed, or the file STOP existing.

With --allowed FILE (lines "VERSION HOST NAME1,NAME2,..."), each answer is
checked: its status must be 200 and the server NAME must be one the
configuration VERSION allowed for HOST; with --expect HOST:HEADER:VALUE the
answer for HOST must carry HEADER: VALUE.

Prints key=value lines on stdout (requests, errors, non200, violations,
versions, ...), then exits 0; the caller asserts on them.  The first
failures are described on stderr ("# ..." lines, TAP-safe).  --records FILE
writes one line per request: "t_ms host status version name".
"""
import argparse
import http.client
import os
import sys
import threading
import time


class Shared:
    """State shared by the worker threads (guarded by lock)."""

    def __init__(self, max_requests):
        self.lock = threading.Lock()   # guards every field below
        self.budget = max_requests     # requests still allowed to start
        self.records = []              # (t_ms, host, status, version, name)
        self.stop = False              # set when any bound is reached


def take_ticket(shared):
    """Returns True when one more request may be sent (decrements the
    budget), False when the count bound is reached or stop is set."""
    with shared.lock:
        if shared.stop or shared.budget <= 0:
            return False
        shared.budget -= 1
        return True


def worker(idx, args, shared, t0):
    """Thread body: one keep-alive connection; reconnects after an error
    (the error itself is recorded as a failed request)."""
    hosts = args.host
    conn = None
    n = idx
    while take_ticket(shared):
        host = hosts[n % len(hosts)]
        n += 1
        t = int((time.monotonic() - t0) * 1000)
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port,
                                                  timeout=args.timeout)
            conn.request("GET", args.path, headers={"Host": host})
            resp = conn.getresponse()
            resp.read()
            rec = (t, host, resp.status,
                   resp.getheader("X-Config-Version", "-"),
                   resp.getheader("X-Whoami-Name", "-"),
                   [(hdr, val, resp.getheader(hdr, "-"))
                    for (h, hdr, val) in args.expect_parsed if h == host])
            if resp.will_close:
                conn.close()
                conn = None
        except Exception as e:  # any failure to get a full answer
            rec = (t, host, "ERR", "-", type(e).__name__ + ":" + str(e), [])
            if conn is not None:
                conn.close()
            conn = None
        with shared.lock:
            shared.records.append(rec)
    if conn is not None:
        conn.close()


def load_allowed(path):
    """Reads "VERSION HOST NAMES" lines into {(version, host): set}."""
    allowed = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            allowed[(parts[0], parts[1])] = set(parts[2].split(","))
    return allowed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/bench")
    ap.add_argument("--host", action="append", default=[],
                    help="Host header (repeat to cycle)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--max", type=int, default=200000,
                    help="bound on the number of requests")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="bound on the duration")
    ap.add_argument("--stop", help="stop as soon as this file exists")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="socket timeout per request (s)")
    ap.add_argument("--allowed", help="file of VERSION HOST NAME,... lines")
    ap.add_argument("--expect", action="append", default=[],
                    help="HOST:HEADER:VALUE every answer for HOST carries")
    ap.add_argument("--records", help="write every request to this file")
    ap.add_argument("--ready", help="create this file once running")
    args = ap.parse_args()
    if not args.host:
        args.host = ["localhost"]
    args.expect_parsed = []
    for e in args.expect:
        parts = e.split(":", 2)
        if len(parts) != 3:
            ap.error("--expect wants HOST:HEADER:VALUE")
        args.expect_parsed.append(tuple(parts))

    shared = Shared(args.max)
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i, args, shared, t0),
                                daemon=True) for i in range(args.conns)]
    for t in threads:
        t.start()
    if args.ready:
        open(args.ready, "w").close()
    deadline = t0 + args.seconds
    while any(t.is_alive() for t in threads):
        if time.monotonic() >= deadline or (args.stop and os.path.exists(args.stop)):
            with shared.lock:
                shared.stop = True
            break
        time.sleep(0.02)
    for t in threads:
        # a request in flight ends within the socket timeout
        t.join(args.timeout + 1)
    elapsed = time.monotonic() - t0

    with shared.lock:
        records = list(shared.records)
    allowed = load_allowed(args.allowed) if args.allowed else None
    errors = non200 = violations = 0
    versions = set()
    shown = 0

    def show(msg):
        nonlocal shown
        if shown < 20:
            print("# " + msg, file=sys.stderr)
        shown += 1

    for (t, host, status, ver, name, extra) in records:
        if status == "ERR":
            errors += 1
            show("t=%dms host=%s connection error %s" % (t, host, name))
            continue
        if status != 200:
            non200 += 1
            show("t=%dms host=%s status %d version %s server %s" % (t, host, status, ver, name))
            continue
        versions.add(ver)
        if allowed is not None:
            ok_names = allowed.get((ver, host))
            if ok_names is None or name not in ok_names:
                violations += 1
                show("t=%dms host=%s version %s answered by %s, allowed %s"
                     % (t, host, ver, name, sorted(ok_names) if ok_names else "nothing"))
                continue
        for (hdr, want, got) in extra:
            if got != want:
                violations += 1
                show("t=%dms host=%s version %s: %s is %r, expected %r"
                     % (t, host, ver, hdr, got, want))
    if args.records:
        with open(args.records, "w") as f:
            for (t, host, status, ver, name, _) in records:
                f.write("%d %s %s %s %s\n" % (t, host, status, ver, name.replace(" ", "_")))
    print("requests=%d" % len(records))
    print("errors=%d" % errors)
    print("non200=%d" % non200)
    print("violations=%d" % violations)
    print("versions=%d" % len(versions))
    print("seconds=%.1f" % elapsed)
    print("rps=%.0f" % (len(records) / elapsed if elapsed > 0 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
