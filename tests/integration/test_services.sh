#!/usr/bin/env bash
# test_services.sh — the service tree of issue 6, black box, against whoami
# backends (counted by X-Whoami-Name) and a recording shadow server:
#
#  1. wrr server weights 5/3/2: 10,000 keep-alive requests split within 2 %;
#  2. weighted services 3/1: 10,000 requests split 7500/2500 within 2 %; a
#     weight-0 child gets nothing; a child whose only server fails its
#     health check gets nothing within 1 s, and serves again when healthy;
#  3. sticky cookies on a loadBalancer: the exact Set-Cookie (name, FNV-1a-64
#     hex of the server URL, Path, Domain, Max-Age, HttpOnly, Secure,
#     SameSite), pinning with the cookie alone, among other cookies and with
#     the raw server URL as value; an unknown value gets a fresh cookie;
#     Traefik's generated default name; maxAge < 0 / 0; sameSite none /
#     strict; a pinned server that goes down hands the client to another;
#  4. sticky cookies on a weighted service (FNV of the child's qualified
#     name), and both levels at once (two Set-Cookie headers);
#  5. the sticky cookie survives reloads (an unrelated router, a 4th server);
#  6. mirroring: percent 50 mirrors requests 1,3,5,7,9 of 10 (Traefik's
#     count*100 < total*percent); method, target, headers and body reach
#     the mirror; a body above maxBodySize is not mirrored; mirrorBody
#     false; a slow or dead mirror neither delays nor breaks the client,
#     which only ever sees main's responses;
#  7. failover: to the fallback within 1 s of the main service's health
#     check failing, and back within 1 s;
#  8. timeouts per router and per service (precedence router > service >
#     serversTransport forwardingTimeouts);
#  9. configuration errors with their key paths (a separate relais): only
#     the bad services (and their routers) are disabled;
# 10. a reload that changes a service's servers (a separate relais with one
#     worker): a request in flight to an unchanged server completes, and
#     the idle pooled connection to an unchanged server is reused (same
#     source port seen by the server).
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------------------
# The client.  Modes:
#   load PORT HOST TOTAL CONNS PATH
#       TOTAL GETs over CONNS keep-alive connections; prints "NAME COUNT"
#       lines (NAME: X-Whoami-Name, or ERR:status / ERR:exception)
#   req PORT HOST [-n N] [-m METHOD] [-H 'K: V']... [-b SIZE] [-g PREFIX] PATH
#       N requests (default 1), each on a new connection ("{i}" in PATH
#       becomes the request's number, from 1); one line each,
#       tab-separated: status, name, milliseconds, the body's first line
#       (or its first line starting with PREFIX), then every Set-Cookie
#       value in order.  -b sends SIZE bytes (byte i = i % 251).
#   par PORT HOST:PATH...
#       the requests at the same time (one connection each); one line each
#       in argument order: "HOST STATUS MS"
cat >"$T/cl.py" <<'PYEOF'
import collections, http.client, sys, threading, time

def body_bytes(n):
    return bytes(i % 251 for i in range(n))

def one(port, host, method, path, headers, body, grep):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        h = {"Host": host}
        h.update(headers)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        ms = int((time.monotonic() - t0) * 1000)
        lines = data.decode("latin-1").split("\n")
        first = lines[0] if lines else ""
        if grep:
            first = next((l for l in lines if l.startswith(grep)), "-")
        sc = r.headers.get_all("Set-Cookie") or []
        return [str(r.status), r.getheader("X-Whoami-Name", "-"), str(ms), first] + sc
    except Exception as e:
        ms = int((time.monotonic() - t0) * 1000)
        return ["EXC:" + type(e).__name__, "-", str(ms), ""]

def load(port, host, total, conns, path):
    lock = threading.Lock()
    left = [total]
    counts = collections.Counter()
    deadline = time.monotonic() + 60
    def worker():
        c = None
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("GET", path, headers={"Host": host})
                r = c.getresponse()
                r.read()
                name = r.getheader("X-Whoami-Name", "-") if r.status == 200 else "ERR:%d" % r.status
            except Exception as e:
                name = "ERR:" + type(e).__name__
                if c is not None:
                    c.close()
                c = None
            with lock:
                counts[name] += 1
    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts: t.start()
    for t in ts: t.join()
    for k, v in sorted(counts.items()):
        print("%s %d" % (k, v))

mode, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "load":
    load(port, host, int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
elif mode == "req":
    args = sys.argv[4:]
    n, method, headers, body, grep = 1, "GET", {}, None, None
    while len(args) > 1:
        o, v = args[0], args[1]
        args = args[2:]
        if o == "-n": n = int(v)
        elif o == "-m": method = v
        elif o == "-H":
            k, _, val = v.partition(":")
            headers[k.strip()] = val.strip()
        elif o == "-b": body = body_bytes(int(v))
        elif o == "-g": grep = v
    for _ in range(n):
        path = args[0].replace("{i}", str(_ + 1))
        print("\t".join(one(port, host, method, path, headers, body, grep)), flush=True)
elif mode == "par":
    specs = [a.split(":", 1) for a in sys.argv[3:]]
    res = [None] * len(specs)
    def run(i):
        h, p = specs[i]
        r = one(port, h, "GET", p, {}, None, None)
        res[i] = "%s %s %s" % (h, r[0], r[2])
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(specs))]
    for t in ts: t.start()
    for t in ts: t.join()
    print("\n".join(res))
PYEOF
cl() { python3 "$T/cl.py" "$@"; }
# col N: field N (tab-separated) of each line of stdin
col() { cut -f"$1"; }
# count NAME OUTPUT: the count printed for NAME by `cl load` (0 if absent)
count() { printf '%s\n' "$2" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'; }
# on NAME OUTPUT: how many `cl req` lines of OUTPUT are a 200 from NAME
on() { printf '%s\n' "$2" | awk -F'\t' -v n="$1" '$1 == 200 && $2 == n' | wc -l; }
# within N EXPECTED PCT: N is within PCT % of EXPECTED
within() { [ $(( ($1 - $2) * ($1 - $2) * 10000 )) -le $(( $2 * $2 * $3 * $3 )) ]; }

# Hashes: `hs.py fnv STR` — FNV-1a-64 of STR in lowercase hex without zero
# padding; `hs.py tname SERVICE` — Traefik's generated cookie name
# ("_" + the first 5 hex digits of SHA-1("_TRAEFIK_BACKEND_" + SERVICE));
# `hs.py fnvs STR...` — "STR HASH" lines.
cat >"$T/hs.py" <<'PYEOF'
import hashlib, sys
def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return "%x" % h
if sys.argv[1] == "fnv":
    print(fnv(sys.argv[2]))
elif sys.argv[1] == "fnvs":
    for a in sys.argv[2:]:
        print(a, fnv(a))
else:
    print(("_" + hashlib.sha1(("_TRAEFIK_BACKEND_" + sys.argv[2]).encode()).hexdigest())[:6])
PYEOF
# fnv STR: FNV_OF[STR] when precomputed (fnv_cache), else hs.py
declare -A FNV_OF=()
fnv() { if [ -n "${FNV_OF[$1]:-}" ]; then echo "${FNV_OF[$1]}"; else python3 "$T/hs.py" fnv "$1"; fi; }
# fnv_cache STR...: fills FNV_OF for the strings (one python run)
fnv_cache() {
  local k v
  while read -r k v; do FNV_OF[$k]=$v; done < <(python3 "$T/hs.py" fnvs "$@")
}

# The recording shadow: `rec.py PORT LOG DELAY_MS` — HTTP/1.1 keep-alive,
# threaded; for every request appends one JSON line to LOG (method, target,
# headers in order, body as hex, "short" when the declared body did not
# arrive within 2 s) and answers 200 "shadow" after DELAY_MS.
cat >"$T/rec.py" <<'PYEOF'
import http.server, json, socketserver, sys, threading, time
port, log, delay = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) / 1000.0
lock = threading.Lock()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    def log_message(self, *a):
        pass
    def body(self):
        short = False
        data = b""
        self.connection.settimeout(2)
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    data += self.rfile.read(size)
                    self.rfile.readline()
            else:
                n = int(self.headers.get("Content-Length") or 0)
                while len(data) < n:
                    d = self.rfile.read1(n - len(data))
                    if not d:
                        short = True
                        break
                    data += d
        except Exception:
            short = True
        self.connection.settimeout(30)
        return data, short
    def any(self):
        data, short = self.body()
        rec = {"t": time.time(), "method": self.command, "target": self.path,
               "headers": [[k, v] for k, v in self.headers.items()],
               "body": data.hex(), "short": short}
        with lock:
            with open(log, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if short:
            self.close_connection = True
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.send_header("X-Whoami-Name", "shadow")
        self.end_headers()
        self.wfile.write(b"shadow")
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = any

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
PYEOF
# rq LOG EXPR: evaluates the python expression EXPR over `recs`, the list
# of requests a shadow recorded (each a dict, see rec.py), and prints it.
rq() {
  python3 - "$1" "$2" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def hdr(r, name):
    v = [x[1] for x in r["headers"] if x[0].lower() == name.lower()]
    return v[0] if v else None
r = eval(sys.argv[2])
print(r if not isinstance(r, list) else " ".join(map(str, r)))
PYEOF
}

# ---------------------------------------------------------------------------
for n in w5 w3 w2 v1 v2 v3 k1 k2 k3 k4 mm m2 bk sl; do
  start_whoami "$n"
  declare "P_$n=$WHOAMI_PORT"
done
# URL NAME: the configured URL of whoami NAME
url() {
  local v="P_$1"
  case $1 in *[!a-z0-9]*|'') echo "http://127.0.0.1:0" ;; *) echo "http://127.0.0.1:${!v:-0}" ;; esac
}
SH=$(free_port); SHS=$(free_port); DEAD=$(free_port)
: >"$T/shadow.log"; : >"$T/shadowslow.log"
python3 "$T/rec.py" "$SH" "$T/shadow.log" 0 >"$T/rec.out" 2>&1 &
PIDS+=($!)
python3 "$T/rec.py" "$SHS" "$T/shadowslow.log" 2000 >"$T/recslow.out" 2>&1 &
PIDS+=($!)
wait_port "$SH"; wait_port "$SHS"

srv() { # srv NAME...: a YAML flow list of the servers' URLs
  local s="" n
  for n in "$@"; do s="$s${s:+, }{url: \"$(url "$n")\"}"; done
  echo "[$s]"
}
HC='healthCheck: {path: /health, interval: 200ms, timeout: 100ms}'

mkdir -p "$T/dyn"
# version EXTRA_ROUTERS STICKY_SERVERS: the main dynamic configuration
version() {
  cat <<EOF
http:
  routers:
    wrr: {rule: "Host(\`wrr\`)", service: wrr}
    canary: {rule: "Host(\`canary\`)", service: canary}
    canz: {rule: "Host(\`canz\`)", service: canz}
    sk: {rule: "Host(\`sk\`)", service: sk}
    skdef: {rule: "Host(\`skdef\`)", service: skdef}
    skneg: {rule: "Host(\`skneg\`)", service: skneg}
    skzero: {rule: "Host(\`skzero\`)", service: skzero}
    sknone: {rule: "Host(\`sknone\`)", service: sknone}
    skstrict: {rule: "Host(\`skstrict\`)", service: skstrict}
    wst: {rule: "Host(\`wst\`)", service: wst}
    wst2: {rule: "Host(\`wst2\`)", service: wst2}
    mir: {rule: "Host(\`mir\`)", service: mir}
    mir100: {rule: "Host(\`mir100\`)", service: mir100}
    mirnb: {rule: "Host(\`mirnb\`)", service: mirnb}
    mirslow: {rule: "Host(\`mirslow\`)", service: mirslow}
    mirdown: {rule: "Host(\`mirdown\`)", service: mirdown}
    fo: {rule: "Host(\`fo\`)", service: fo}
    r1: {rule: "Host(\`t1\`)", service: slow, timeouts: {responseHeaderTimeout: 300ms}}
    r2: {rule: "Host(\`t2\`)", service: slow}
    r3: {rule: "Host(\`t3\`)", service: slow2}
    r4: {rule: "Host(\`t4\`)", service: slow2, timeouts: {responseHeaderTimeout: 2s}}
    r5: {rule: "Host(\`t5\`)", service: slow3}
    r6: {rule: "Host(\`t6\`)", service: slow4}
    r7: {rule: "Host(\`t7\`)", service: slow4, timeouts: {responseHeaderTimeout: 2s}}
$1
  serversTransports:
    tr:
      forwardingTimeouts: {responseHeaderTimeout: 300ms}
  services:
    wrr:
      loadBalancer:
        servers:
          - {url: "$(url w5)", weight: 5}
          - {url: "$(url w3)", weight: 3}
          - {url: "$(url w2)", weight: 2}
    canary:
      weighted:
        services: [{name: v1, weight: 3}, {name: v2, weight: 1}]
    canz:
      weighted:
        services: [{name: v1, weight: 1}, {name: v3, weight: 0}]
    v1: {loadBalancer: {$HC, servers: $(srv v1)}}
    v2: {loadBalancer: {$HC, servers: $(srv v2)}}
    v3: {loadBalancer: {servers: $(srv v3)}}
    sk:
      loadBalancer:
        sticky:
          cookie: {name: s1, httpOnly: true, secure: true, sameSite: lax, maxAge: 60, path: /app, domain: example.test}
        $HC
        servers: $2
    skdef: {loadBalancer: {sticky: {cookie: {}}, servers: $(srv k1 k2 k3)}}
    skneg: {loadBalancer: {sticky: {cookie: {name: sn, maxAge: -1}}, servers: $(srv k1 k2 k3)}}
    skzero: {loadBalancer: {sticky: {cookie: {name: sz, maxAge: 0}}, servers: $(srv k1 k2 k3)}}
    sknone: {loadBalancer: {sticky: {cookie: {name: sx, sameSite: none}}, servers: $(srv k1 k2 k3)}}
    skstrict: {loadBalancer: {sticky: {cookie: {name: st, sameSite: strict}}, servers: $(srv k1 k2 k3)}}
    wst:
      weighted:
        sticky: {cookie: {name: w1}}
        services: [{name: v1, weight: 1}, {name: v2, weight: 1}]
    wst2:
      weighted:
        sticky: {cookie: {name: w2}}
        services: [{name: ska, weight: 1}, {name: skb, weight: 1}]
    ska: {loadBalancer: {sticky: {cookie: {name: s2}}, servers: $(srv k1 k2)}}
    skb: {loadBalancer: {sticky: {cookie: {name: s2}}, servers: $(srv k3 k4)}}
    mir:
      mirroring: {service: mm, mirrorBody: true, maxBodySize: 1024, mirrors: [{name: shadow, percent: 50}]}
    mir100:
      mirroring: {service: mm, mirrorBody: true, maxBodySize: 1024, mirrors: [{name: shadow, percent: 100}]}
    mirnb:
      mirroring: {service: mm, mirrorBody: false, mirrors: [{name: shadow, percent: 100}]}
    mirslow:
      mirroring: {service: mm, mirrors: [{name: shadowslow, percent: 100}]}
    mirdown:
      mirroring: {service: mm, mirrors: [{name: dead, percent: 100}]}
    mm: {loadBalancer: {servers: $(srv mm)}}
    shadow: {loadBalancer: {servers: [{url: "http://127.0.0.1:$SH"}]}}
    shadowslow: {loadBalancer: {servers: [{url: "http://127.0.0.1:$SHS"}]}}
    dead: {loadBalancer: {servers: [{url: "http://127.0.0.1:$DEAD"}]}}
    fo:
      failover: {service: main2, fallback: backup}
    main2: {loadBalancer: {$HC, servers: $(srv m2)}}
    backup: {loadBalancer: {servers: $(srv bk)}}
    slow: {loadBalancer: {servers: $(srv sl)}}
    slow2: {loadBalancer: {timeouts: {responseHeaderTimeout: 300ms}, servers: $(srv sl)}}
    slow3: {loadBalancer: {serversTransport: tr, timeouts: {responseHeaderTimeout: 2s}, servers: $(srv sl)}}
    slow4: {loadBalancer: {serversTransport: tr, servers: $(srv sl)}}
EOF
}
# publish EXTRA_ROUTERS STICKY_SERVERS: replaces the dynamic file atomically
publish() {
  version "$1" "$2" >"$T/dyn/dynamic.yaml.tmp" && mv -f "$T/dyn/dynamic.yaml.tmp" "$T/dyn/dynamic.yaml"
}
# applied [LOG]: how many "configuration N applied" lines LOG has
applied() { grep -Ec 'configuration [0-9]+ applied' "${1:-$T/relais.log}" 2>/dev/null || true; }
# wait_applied N [LOG]: waits (5 s) until more than N configurations applied
wait_applied() {
  local i
  for i in $(seq 1 100); do [ "$(applied "${2:-}")" -gt "$1" ] && return 0; sleep 0.05; done
  return 1
}
# poll MS CMD...: runs CMD every 50 ms until it succeeds, at most MS
# milliseconds; sets POLL_MS to the time until it succeeded (the last run
# of CMD included); false when that is more than MS.
poll() {
  local max=$1 t0; shift
  t0=$(date +%s%N)
  while :; do
    "$@" && { POLL_MS=$(( ($(date +%s%N) - t0) / 1000000 )); [ "$POLL_MS" -le "$max" ]; return; }
    POLL_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$POLL_MS" -ge "$max" ] && return 1
    sleep 0.05
  done
}
# health NAME STATUS: sets the /health status of whoami NAME
health() { curl -s -o /dev/null -X POST --data "$2" "$(url "$1")/health"; }

fnv_cache $(for n in k1 k2 k3 k4; do url $n; done) v1@file v2@file ska@file skb@file
publish "" "$(srv k1 k2 k3)"
PORT=$(free_port)
static_config "$T/relais.yaml" "$PORT" "$T/dyn/dynamic.yaml"
start_relais "$T/relais.yaml" "$PORT" || { echo "Bail out! relais did not start"; exit 1; }
ok "configuration applied" wait_log "configuration [0-9]+ applied"
# let the first health probes pass (servers start healthy, this is a margin)
sleep 0.3
grep -E 'disabled|error' "$T/relais.log" | head -20 | sed 's/^/# log: /'

# ---- 1. server weights ----------------------------------------------------
t0=$(date +%s%N)
o=$(cl load "$PORT" wrr 10000 8 /)
echo "# wrr 10000 requests in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(echo $o)"
for x in "w5 5000" "w3 3000" "w2 2000"; do
  set -- $x
  n=$(count "$1" "$o")
  ok "1. wrr weights 5/3/2: $1 gets $2 +- 2 % of 10000 (got $n)" within "$n" "$2" 2
done

# ---- 2. weighted services ---------------------------------------------------
o=$(cl load "$PORT" canary 10000 8 /)
echo "# canary: $(echo $o)"
n=$(count v1 "$o"); ok "2. weighted 3/1: v1 gets 7500 +- 2 % (got $n)" within "$n" 7500 2
n=$(count v2 "$o"); ok "2. weighted 3/1: v2 gets 2500 +- 2 % (got $n)" within "$n" 2500 2
o=$(cl load "$PORT" canz 200 4 /)
is "2. weight 0 child gets nothing (200 of 200 to v1)" "v1 200" "$(echo $o)"
health v2 503
all_v1() { [ "$(cl load "$PORT" canary 8 1 / | tr '\n' ' ')" = "v1 8 " ]; }
ok "2. v2 unhealthy: canary goes to v1 only within 1 s" poll 1000 all_v1
echo "# v2 left canary after $POLL_MS ms"
o=$(cl load "$PORT" canary 400 4 /)
is "2. v2 unhealthy: 400 of 400 to v1" "v1 400" "$(echo $o)"
health v2 200
some_v2() { [ "$(count v2 "$(cl load "$PORT" canary 8 1 /)")" -gt 0 ]; }
ok "2. v2 healthy again: serves canary within 1 s" poll 1000 some_v2
o=$(cl load "$PORT" canary 400 4 /)
n=$(count v2 "$o")
ok "2. v2 healthy again: its share is back (60-140 of 400, got $n; $(echo $o))" \
  test "$n" -ge 60 -a "$n" -le 140 -a "$(count v1 "$o")" = $((400 - n))

# ---- 3. sticky cookie on a loadBalancer --------------------------------------
first=$(cl req "$PORT" sk /app/x)
PIN=$(col 2 <<<"$first")
V=$(fnv "$(url "$PIN")")
is "3. first answer 200 from one of k1 k2 k3" "200 1" \
  "$(col 1 <<<"$first") $(grep -cE '^k[123]$' <<<"$PIN")"
is "3. exactly one Set-Cookie, byte-exact, for the server that answered ($PIN)" \
  "s1=$V; Path=/app; Domain=example.test; Max-Age=60; HttpOnly; Secure; SameSite=Lax" \
  "$(cut -f5- <<<"$first")"
o=$(cl req "$PORT" sk -n 30 -H "Cookie: s1=$V" /app/x)
is "3. 30 requests with the cookie reach $PIN" 30 "$(on "$PIN" "$o")"
is "3. ... and carry no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"
o=$(cl req "$PORT" sk -n 30 -H "Cookie: a=1; s1=$V; b=2" /app/x)
is "3. among other cookies: 30 requests reach $PIN" 30 "$(on "$PIN" "$o")"
is "3. ... and carry no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"
o=$(cl req "$PORT" sk -n 10 -H "Cookie: s1=$(url "$PIN")" /app/x)
is "3. the raw server URL as value pins too (v2 compatibility)" 10 "$(on "$PIN" "$o")"
o=$(cl req "$PORT" sk -n 6 -H "Cookie: s1=0123456789abcdef" /app/x)
bad=0
while IFS=$'\t' read -r st nm _ _ sc rest; do
  [ "$st" = 200 ] && [ -z "$rest" ] &&
    [ "$sc" = "s1=$(fnv "$(url "$nm")"); Path=/app; Domain=example.test; Max-Age=60; HttpOnly; Secure; SameSite=Lax" ] ||
    { bad=$((bad + 1)); echo "# unexpected: $st $nm $sc $rest"; }
done <<<"$o"
is "3. unknown value: a normal pick with one fresh Set-Cookie for it (6 requests)" 0 "$bad"
ok "3. unknown value: the picks are spread (not all to one server: $(col 2 <<<"$o" | sort | uniq -c | tr -s ' \n' ' '))" \
  test "$(col 2 <<<"$o" | sort -u | wc -l)" -ge 2
# variants: SERVICE EXPECTED-NAME EXPECTED-ATTRIBUTES
for x in "skdef|$(python3 "$T/hs.py" tname skdef@file)|; Path=/" \
         "skneg|sn|; Path=/; Max-Age=0" \
         "skzero|sz|; Path=/" \
         "sknone|sx|; Path=/; SameSite=None" \
         "skstrict|st|; Path=/; SameSite=Strict"; do
  IFS='|' read -r svc cname attrs <<<"$x"
  o=$(cl req "$PORT" "$svc" /)
  nm=$(col 2 <<<"$o")
  is "3. $svc: Set-Cookie" "$cname=$(fnv "$(url "$nm")")$attrs" "$(cut -f5- <<<"$o")"
done

# ---- 4. sticky on weighted services -------------------------------------------
o=$(cl req "$PORT" wst /)
child=$(col 2 <<<"$o")
is "4. weighted sticky: one Set-Cookie w1 = FNV of the child's name ($child@file)" \
  "w1=$(fnv "$child@file"); Path=/" "$(cut -f5- <<<"$o")"
o=$(cl req "$PORT" wst -n 20 -H "Cookie: w1=$(fnv "$child@file")" /)
is "4. with the cookie 20 of 20 go to $child" 20 "$(on "$child" "$o")"
is "4. ... and carry no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"
o=$(cl req "$PORT" wst2 /)
nm=$(col 2 <<<"$o")
case $nm in k1|k2) kid=ska ;; *) kid=skb ;; esac
got=$(cut -f5- <<<"$o" | tr '\t' '\n' | sort | tr '\n' '|')
exp=$(printf '%s\n' "w2=$(fnv "$kid@file"); Path=/" "s2=$(fnv "$(url "$nm")"); Path=/" | sort | tr '\n' '|')
is "4. nested sticky: two Set-Cookie headers (child $kid, server $nm)" "$exp" "$got"
o=$(cl req "$PORT" wst2 -n 20 -H "Cookie: w2=$(fnv "$kid@file"); s2=$(fnv "$(url "$nm")")" /)
is "4. nested sticky: with both cookies 20 of 20 stay on $nm" 20 "$(on "$nm" "$o")"
is "4. ... and carry no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"

# ---- 5. stickiness survives reloads ----------------------------------------------
n=$(applied)
publish "    extra: {rule: \"Host(\`extra\`)\", service: mm}" "$(srv k1 k2 k3)"
ok "5. reload (an unrelated router) applied" wait_applied "$n"
is "5. the new router serves" 200 "$(cl req "$PORT" extra / | col 1)"
o=$(cl req "$PORT" sk -n 10 -H "Cookie: s1=$V" /app/x)
is "5. after the reload the cookie still reaches $PIN (10 of 10)" 10 "$(on "$PIN" "$o")"
is "5. ... with no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"
n=$(applied)
publish "    extra: {rule: \"Host(\`extra\`)\", service: mm}" "$(srv k1 k2 k3 k4)"
ok "5. reload (a 4th server in the sticky service) applied" wait_applied "$n"
o=$(cl req "$PORT" sk -n 10 -H "Cookie: s1=$V" /app/x)
is "5. after adding k4 the cookie still reaches $PIN (10 of 10)" 10 "$(on "$PIN" "$o")"
is "5. ... with no Set-Cookie" 0 "$(cut -f5- <<<"$o" | grep -c .)"
o=$(cl load "$PORT" sk 40 1 /app/x)
ok "5. k4 is in rotation for new clients ($(echo $o))" test "$(count k4 "$o")" -gt 0

# ---- 3 (end). the pinned server goes down ---------------------------------------
health "$PIN" 503
moved() { [ "$(cl req "$PORT" sk -H "Cookie: s1=$V" /app/x | cut -f1,2)" != $'200\t'"$PIN" ]; }
ok "3. pinned $PIN unhealthy: the cookie's requests leave it within 1 s" poll 1000 moved
o=$(cl req "$PORT" sk -n 6 -H "Cookie: s1=$V" /app/x)
bad=0
while IFS=$'\t' read -r st nm _ _ sc rest; do
  [ "$st" = 200 ] && [ "$nm" != "$PIN" ] && [ -z "$rest" ] &&
    [ "$sc" = "s1=$(fnv "$(url "$nm")"); Path=/app; Domain=example.test; Max-Age=60; HttpOnly; Secure; SameSite=Lax" ] ||
    { bad=$((bad + 1)); echo "# unexpected: $st $nm $sc $rest"; }
done <<<"$o"
is "3. ... 6 requests with the old cookie: each to another server, with a new Set-Cookie for it" 0 "$bad"
NEW=$(head -1 <<<"$o" | col 2)
o=$(cl req "$PORT" sk -n 10 -H "Cookie: s1=$(fnv "$(url "$NEW")")" /app/x)
is "3. ... and the new cookie pins $NEW (10 of 10, no Set-Cookie)" "10 0" "$(on "$NEW" "$o") $(cut -f5- <<<"$o" | grep -c .)"
health "$PIN" 200
back() { [ "$(cl req "$PORT" sk -H "Cookie: s1=$V" /app/x | col 2)" = "$PIN" ]; }
ok "3. healthy again: the cookie pins $PIN again within 1 s" poll 1000 back

# ---- 6. mirroring ----------------------------------------------------------------------
o=$(cl req "$PORT" mir -n 10 "/m50/{i}")
is "6. percent 50: 10 of 10 answered 200 by main" "200 mm|200 mm|200 mm|200 mm|200 mm|200 mm|200 mm|200 mm|200 mm|200 mm|" \
  "$(cut -f1,2 <<<"$o" | tr '\t\n' ' |')"
EXP50=$(python3 -c '
count = 0
out = []
for total in range(1, 11):
    if count * 100 < total * 50:
        count += 1
        out.append("/m50/%d" % total)
print(" ".join(out))')
mir50() { [ "$(rq "$T/shadow.log" '[r["target"] for r in recs if r["target"].startswith("/m50/")]' | wc -w)" -ge 5 ]; }
poll 2000 mir50
sleep 0.2
# (copies travel on their own connections: they may arrive in any order)
is "6. percent 50: the shadow got exactly requests $EXP50" "$EXP50" \
  "$(rq "$T/shadow.log" 'sorted([r["target"] for r in recs if r["target"].startswith("/m50/")], key=lambda t: int(t.rsplit("/", 1)[1]))')"
o=$(cl req "$PORT" mir100 -m POST -H "X-Test: 1" -b 100 "/upload?n=small&x=%41")
is "6. POST 100 bytes: main answers with the body's sha256" \
  "200 mm received 100 bytes sha256=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(i % 251 for i in range(100))).hexdigest())')" \
  "$(cut -f1,2,4 <<<"$o" | tr '\t' ' ')"
got_small() { [ "$(rq "$T/shadow.log" 'len([r for r in recs if "n=small" in r["target"]])')" -ge 1 ]; }
ok "6. the mirror receives the POST" poll 2000 got_small
is "6. mirror: method and target" "POST /upload?n=small&x=%41" \
  "$(rq "$T/shadow.log" '[r["method"] + " " + r["target"] for r in recs if "n=small" in r["target"]]')"
is "6. mirror: X-Test header" "1" "$(rq "$T/shadow.log" '[hdr(r, "X-Test") for r in recs if "n=small" in r["target"]]')"
is "6. mirror: Content-Length 100" "100" "$(rq "$T/shadow.log" '[hdr(r, "Content-Length") for r in recs if "n=small" in r["target"]]')"
is "6. mirror: identical body (hex, short)" "$(python3 -c 'print(bytes(i % 251 for i in range(100)).hex())') False" \
  "$(rq "$T/shadow.log" '[r["body"] + " " + str(r["short"]) for r in recs if "n=small" in r["target"]]')"
o=$(cl req "$PORT" mir100 -m POST -b 2000 "/upload?n=big")
is "6. POST 2000 bytes (> maxBodySize): main gets it whole" \
  "200 mm received 2000 bytes sha256=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(i % 251 for i in range(2000))).hexdigest())')" \
  "$(cut -f1,2,4 <<<"$o" | tr '\t' ' ')"
cl req "$PORT" mir100 /marker >/dev/null
got_marker() { [ "$(rq "$T/shadow.log" 'len([r for r in recs if r["target"] == "/marker"])')" -ge 1 ]; }
poll 2000 got_marker
sleep 0.3
is "6. ... and the mirror receives nothing for it" 0 \
  "$(rq "$T/shadow.log" 'len([r for r in recs if "n=big" in r["target"]])')"
o=$(cl req "$PORT" mirnb -m POST -b 100 "/upload?n=nobody")
is "6. mirrorBody false: main gets the body" "200 mm received 100 bytes" "$(cut -f1,2,4 <<<"$o" | tr '\t' ' ' | cut -d' ' -f1-5)"
got_nb() { [ "$(rq "$T/shadow.log" 'len([r for r in recs if "n=nobody" in r["target"]])')" -ge 1 ]; }
ok "6. mirrorBody false: the mirror gets the request" poll 2000 got_nb
is "6. mirrorBody false: no body bytes, Content-Length 0 or absent (body, short, CL)" "ok" \
  "$(rq "$T/shadow.log" '[("ok" if r["body"] == "" and not r["short"] and hdr(r, "Content-Length") in (None, "0") else "body=%r short=%r CL=%r" % (r["body"][:40], r["short"], hdr(r, "Content-Length"))) for r in recs if "n=nobody" in r["target"]][0]')"
o=$(cl req "$PORT" mirslow -n 10 /slowmirror)
echo "# mirslow ms: $(col 3 <<<"$o" | tr '\n' ' ')"
is "6. a 2 s mirror: 10 of 10 answered by main" 10 "$(cut -f1,2 <<<"$o" | grep -cx $'200\tmm')"
is "6. a 2 s mirror: no response delayed past 500 ms" 0 "$(col 3 <<<"$o" | awk '$1 >= 500' | wc -l)"
slowseen() { [ "$(rq "$T/shadowslow.log" 'len(recs)')" -ge 1 ]; }
ok "6. ... and the slow mirror did receive them" poll 2000 slowseen
o=$(cl req "$PORT" mirdown -n 5 /deadmirror)
is "6. a dead mirror: 5 of 5 answered 200 by main" 5 "$(cut -f1,2 <<<"$o" | grep -cx $'200\tmm')"
is "6. a mirror's response never reaches the client (bodies are main's)" 0 \
  "$( (cl req "$PORT" mir100 -n 5 /body; cl req "$PORT" mirslow -n 2 /body) | col 4 | grep -cvx 'Name: mm')"

# ---- 7. failover -----------------------------------------------------------------------
o=$(cl load "$PORT" fo 20 2 /)
is "7. main2 healthy: 20 of 20 to m2" "m2 20" "$(echo $o)"
health m2 503
to_bk() { [ "$(cl req "$PORT" fo / | col 2)" = bk ]; }
ok "7. main2 unhealthy: requests go to backup within 1 s" poll 1000 to_bk
echo "# failover after $POLL_MS ms"
o=$(cl load "$PORT" fo 20 2 /)
is "7. ... every request (20 of 20 to bk)" "bk 20" "$(echo $o)"
health m2 200
to_m2() { [ "$(cl req "$PORT" fo / | col 2)" = m2 ]; }
ok "7. main2 healthy again: back within 1 s" poll 1000 to_m2
echo "# back after $POLL_MS ms"
o=$(cl load "$PORT" fo 20 2 /)
is "7. ... every request (20 of 20 to m2)" "m2 20" "$(echo $o)"

# ---- 8. timeouts per router and per service ----------------------------------------
o=$(cl par "$PORT" "t1:/?wait=1s" "t2:/?wait=1s" "t3:/?wait=1s" "t4:/?wait=1s" \
         "t5:/?wait=1s" "t6:/?wait=1s" "t7:/?wait=1s")
echo "# timeouts: $(echo $o)"
# tcheck HOST STATUS MIN MAX DESC
tcheck() {
  local l st ms
  l=$(grep "^$1 " <<<"$o"); st=$(cut -d' ' -f2 <<<"$l"); ms=$(cut -d' ' -f3 <<<"$l")
  ok "8. $5: $2 in $3-$4 ms (got $st in $ms ms)" test "$st" = "$2" -a "$ms" -ge "$3" -a "$ms" -lt "$4"
}
tcheck t1 504 250 900 "router timeouts.responseHeaderTimeout 300ms"
tcheck t2 200 950 3000 "the same service through a router without timeouts"
tcheck t3 504 250 900 "service loadBalancer.timeouts.responseHeaderTimeout 300ms"
tcheck t4 200 950 3000 "router 2s over service 300ms (router wins)"
tcheck t5 200 950 3000 "service 2s over serversTransport 300ms (service wins)"
tcheck t6 504 250 900 "serversTransport forwardingTimeouts 300ms alone"
tcheck t7 200 950 3000 "router 2s over serversTransport 300ms"

ok "relais still running" kill -0 "$RELAIS_PID"

# ---- 9. configuration errors (a relais of its own) -------------------------------------
start_whoami g; P_g=$WHOAMI_PORT
mkdir -p "$T/e"
cat >"$T/e/dyn.yaml" <<EOF
http:
  routers:
    good: {rule: "Host(\`good\`)", service: good}
EOF
for s in w1 ca cb two m1 f1 s9; do
  printf '    %s: {rule: "Host(`%s`)", service: %s}\n' "$s" "$s" "$s" >>"$T/e/dyn.yaml"
done
cat >>"$T/e/dyn.yaml" <<EOF
  services:
    good: {loadBalancer: {servers: $(srv g)}}
    w1: {weighted: {services: [{name: nope, weight: 1}]}}
    ca: {weighted: {services: [{name: cb, weight: 1}]}}
    cb: {weighted: {services: [{name: ca, weight: 1}]}}
    two:
      loadBalancer: {servers: $(srv g)}
      weighted: {services: [{name: good, weight: 1}]}
    m1: {mirroring: {service: good, mirrors: [{name: good, percent: 150}]}}
    f1: {failover: {service: good}}
    s9: {loadBalancer: {sticky: {cookie: {name: x, sameSite: bogus}}, servers: $(srv g)}}
EOF
EP=$(free_port)
static_config "$T/e/relais.yaml" "$EP" "$T/e/dyn.yaml"
"$RELAIS" --config "$T/e/relais.yaml" --plugin-dir "${PLUGIN_DIR:-$RELAIS_PLUGIN_DIR}" >"$T/e/relais.log" 2>&1 &
E_PID=$!
PIDS+=($E_PID)
wait_port "$EP"
for i in $(seq 1 100); do [ "$(applied "$T/e/relais.log")" -gt 0 ] && break; sleep 0.05; done
elog=$(grep -E "disabled|cycle" "$T/e/relais.log")
# like9 DESC SERVICE MESSAGE: the error log has "service SERVICE disabled: MESSAGE"
like9() {
  if grep -qF -- "service $2 disabled: $3" "$T/e/relais.log"; then ok "9. $1" true
  else
    ok "9. $1" false
    printf '#   expected a line with: service %s disabled: %s\n' "$2" "$3"
    grep -F "service $2 disabled" "$T/e/relais.log" | sed 's/^/#   got: /' | head -3
  fi
}
like9 "weighted child missing" 'w1@file' 'http.services.w1@file.weighted.services[0].name: no service named "nope@file"'
like9 "two kinds in one service" 'two@file' 'http.services.two@file: expected exactly one of loadBalancer, weighted, mirroring, failover'
like9 "mirror percent 150" 'm1@file' 'http.services.m1@file.mirroring.mirrors[0].percent: expected a percentage from 0 to 100'
like9 "failover without fallback" 'f1@file' 'http.services.f1@file.failover.fallback: missing: expected the name of the fallback service'
like9 "sameSite bogus" 's9@file' 'http.services.s9@file.loadBalancer.sticky.cookie.sameSite: expected none, lax or strict'
like "9. cycle: ca disabled" 'service ca@file disabled: ' "$elog"
like "9. cycle: cb disabled" 'service cb@file disabled: ' "$elog"
like "9. cycle: a line with \"service cycle:\" naming both" \
  'service cycle:.*(ca@file.*cb@file|cb@file.*ca@file)' "$elog"
grep -E 'disabled|cycle' "$T/e/relais.log" | head -20 | sed 's/^/# e-log: /'
codes=""
for s in w1 ca cb two m1 f1 s9 good; do
  codes="$codes $s=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $s" "http://127.0.0.1:$EP/")"
done
is "9. routers of disabled services 404, the good one 200" \
  " w1=404 ca=404 cb=404 two=404 m1=404 f1=404 s9=404 good=200" "$codes"

# ---- 10. server changes: in-flight requests and pooled connections ------------------------
for n in u1 u2 u3 u4; do start_whoami "$n"; declare "P_$n=$WHOAMI_PORT"; done
mkdir -p "$T/p"
pversion() {
  cat <<EOF
http:
  routers:
    pl: {rule: "Host(\`pl\`)", service: pl}
    pk: {rule: "Host(\`pk\`)", service: pk}
  services:
    pl: {loadBalancer: {servers: $1}}
    pk: {loadBalancer: {servers: $2}}
EOF
}
pversion "$(srv u1)" "$(srv u2)" >"$T/p/dyn.yaml"
PP=$(free_port)
static_config "$T/p/relais.yaml" "$PP" "$T/p/dyn.yaml"
"$RELAIS" --config "$T/p/relais.yaml" --plugin-dir "${PLUGIN_DIR:-$RELAIS_PLUGIN_DIR}" --workers 1 \
  >"$T/p/relais.log" 2>&1 &
P_PID=$!
PIDS+=($P_PID)
wait_port "$PP"
for i in $(seq 1 100); do [ "$(applied "$T/p/relais.log")" -gt 0 ] && break; sleep 0.05; done
o=$(cl req "$PP" pk -n 3 -g RemoteAddr: /)
RA=$(col 4 <<<"$o" | head -1)
is "10. three sequential requests share one pooled connection to u2 ($RA)" \
  "$(printf 'u2 %s\n' "$RA" "$RA" "$RA")" "$(cut -f2,4 <<<"$o" | tr '\t' ' ')"
cl req "$PP" pl -g RemoteAddr: "/?wait=1500ms" >"$T/p/inflight.out" &
IFPID=$!
PIDS+=($IFPID)
arrived() { grep -q 'wait=1500ms' "$T/u1.log"; }
ok "10. the slow request reached u1" poll 2000 arrived
n=$(applied "$T/p/relais.log")
pversion "$(srv u1 u3)" "$(srv u2 u4)" >"$T/p/dyn.yaml.tmp" && mv -f "$T/p/dyn.yaml.tmp" "$T/p/dyn.yaml"
ok "10. reload (u3 and u4 added) applied while the request is in flight" wait_applied "$n" "$T/p/relais.log"
ok "10. ... and the request is still in flight then" kill -0 "$IFPID"
wait "$IFPID"
is "10. the in-flight request to u1 completes with 200 from u1" "200 u1" "$(cut -f1,2 <<<"$(cat "$T/p/inflight.out")" | tr '\t' ' ')"
o=$(cl req "$PP" pk -n 4 -g RemoteAddr: /)
echo "# pk after reload: $(cut -f2,4 <<<"$o" | tr '\t\n' ' ;')"
is "10. u4 is in rotation after the reload" 2 "$(on u4 "$o")"
is "10. u2 sees the same pooled connection after the reload (RemoteAddr)" \
  "$RA" "$(awk -F'\t' '$2 == "u2" { print $4 }' <<<"$o" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# ---- the three relais stop cleanly (sanitizer builds: no report, no leak) ------------------
for x in "main:$RELAIS_PID:$T/relais.log" "errors:$E_PID:$T/e/relais.log" "pool:$P_PID:$T/p/relais.log"; do
  IFS=: read -r nm pid log <<<"$x"
  kill -TERM "$pid"
  for i in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  wait "$pid"
  is "relais ($nm) exits 0 on SIGTERM" 0 "$?"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    ok "relais ($nm): no sanitizer report" false
    grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -40 | sed 's/^/#   /'
  else
    ok "relais ($nm): no sanitizer report" true
  fi
done

t_done
