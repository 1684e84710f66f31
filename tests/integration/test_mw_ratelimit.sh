#!/usr/bin/env bash
# The rateLimit middleware (plugin ratelimit.so), black-box: relais with
# two worker threads in front of whoami.
#  - exactness across threads: average 50/s, burst 10, 8 concurrent
#    keep-alive clients for a bounded 2-second run; the number of 200s must
#    be within 3 of burst + average * (measured duration), every other
#    answer a 429 "Too Many Requests" with Retry-After and X-Retry-In;
#  - a request that needs to wait at most 1/(2*rate) is held, then served;
#    one that would wait longer gets 429 at once with Retry-After =
#    ceil(wait) and X-Retry-In = the wait as Go prints it;
#  - period (6 per minute), average 0 (no limit), burst 0 (= 1);
#  - sourceCriterion: a bucket per requestHeaderName value, per
#    requestHost, per ipStrategy address (X-Forwarded-For is only data);
#  - bad options disable the middleware and its router, with the key path.
#
# The plugin comes from $RELAIS_PLUGIN_DIR (staged by make), or from
# $RATELIMIT_SO when set (a hand-built .so).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }

plugin_dir_own ${RATELIMIT_SO:+"$RATELIMIT_SO"}
[ -e "$PLUGIN_DIR/ratelimit.so" ] ||
  { echo "Bail out! no ratelimit.so in $RELAIS_PLUGIN_DIR (or RATELIMIT_SO)"; exit 1; }

start_whoami w1 --threads 2; P1=$WHOAMI_PORT
WEB=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF2
http:
  routers:
    exact:  {rule: Host(\`exact.test\`),  service: s, middlewares: [exact]}
    hold:   {rule: Host(\`hold.test\`),   service: s, middlewares: [hold]}
    minute: {rule: Host(\`minute.test\`), service: s, middlewares: [minute]}
    nolim:  {rule: Host(\`nolim.test\`),  service: s, middlewares: [nolim]}
    b0:     {rule: Host(\`b0.test\`),     service: s, middlewares: [b0]}
    hdr:    {rule: Host(\`hdr.test\`),    service: s, middlewares: [hdr]}
    host:   {rule: Host(\`host-a.test\`) || Host(\`host-b.test\`), service: s, middlewares: [host]}
    xff:    {rule: Host(\`xff.test\`),    service: s, middlewares: [xff]}
    badr1:  {rule: Host(\`bad1.test\`),   service: s, middlewares: [bad1]}
    badr2:  {rule: Host(\`bad2.test\`),   service: s, middlewares: [bad2]}
    badr3:  {rule: Host(\`bad3.test\`),   service: s, middlewares: [bad3]}
    badr4:  {rule: Host(\`bad4.test\`),   service: s, middlewares: [bad4]}
  middlewares:
    exact:  {rateLimit: {average: 50, period: 1s, burst: 10}}
    hold:   {rateLimit: {average: 2, burst: 1}}
    minute: {rateLimit: {average: 6, period: 1m, burst: 2}}
    nolim:  {rateLimit: {burst: 1}}
    b0:     {rateLimit: {average: 1, period: 1h, burst: 0}}
    hdr:    {rateLimit: {average: 1, period: 1h, burst: 3, sourceCriterion: {requestHeaderName: X-Api-Key}}}
    host:   {rateLimit: {average: 1, period: 1h, burst: 2, sourceCriterion: {requestHost: true}}}
    xff:    {rateLimit: {average: 1, period: 1h, burst: 1, sourceCriterion: {ipStrategy: {depth: 1}}}}
    bad1:   {rateLimit: {average: -1, period: -1s, burst: many}}
    bad2:   {rateLimit: {average: 5, sourceCriterion: {ipStrategy: {depth: 1}, requestHost: true}}}
    bad3:   {rateLimit: {average: 5, sourceCriterion: {requestHeaderName: X-Key, requestHost: true}}}
    bad4:   {rateLimit: {average: 5, redis: {endpoints: ["127.0.0.1:6379"]}, averge: 3, sourceCriterion: {ipStrategy: {depth: 1}, requestHeaderName: X-Key}}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF2
cat >"$T/relais.yaml" <<EOF2
entryPoints:
  web:
    address: "127.0.0.1:$WEB"
    forwardedHeaders: {trustedIPs: ["127.0.0.1/32"]}
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF2
start_relais "$T/relais.yaml" "$WEB"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

get() {
  local h=$1; shift
  curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 5 -H "Host: $h" "$@" \
    "http://127.0.0.1:$WEB/"
}
body() { cat "$T/body"; }
hdr() { tr -d '\r' <"$T/head" | sed -n "s/^$1: //Ip"; }

# ---- exactness across worker threads
cat >"$T/load.py" <<'PY'
"""load.py PORT HOST SECONDS THREADS: THREADS keep-alive clients send GET /
as fast as they can for SECONDS; prints "ok200 n429 other duration bad429"
where duration runs from the first request sent to the last one sent and
bad429 counts 429s without the expected headers/body."""
import http.client, sys, threading, time, re
port, host, secs, nthreads = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()
res = {"200": 0, "429": 0, "other": 0, "bad429": 0, "first": None, "last": 0.0}
start = time.monotonic() + 0.2
stop = start + secs
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < start:
        time.sleep(0.001)
    n = {"200": 0, "429": 0, "other": 0, "bad429": 0}
    first, last = None, 0.0
    while True:
        t = time.monotonic()
        if t >= stop:
            break
        if first is None:
            first = t
        last = t
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse()
        b = r.read()
        if r.status == 200:
            n["200"] += 1
        elif r.status == 429:
            n["429"] += 1
            ra, ri = r.getheader("Retry-After"), r.getheader("X-Retry-In") or ""
            if (b != b"Too Many Requests" or ra != "1" or
                    not re.fullmatch(r"[0-9]+(\.[0-9]+)?(ms|µs|ns)", ri)):
                n["bad429"] += 1
        else:
            n["other"] += 1
    c.close()
    with lock:
        for k in n:
            res[k] += n[k]
        if first is not None and (res["first"] is None or first < res["first"]):
            res["first"] = first
        res["last"] = max(res["last"], last)
ts = [threading.Thread(target=run) for _ in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
print(res["200"], res["429"], res["other"], "%.4f" % (res["last"] - res["first"]), res["bad429"])
PY
read -r n200 n429 nother dur bad429 < <(timeout 20 python3 "$T/load.py" "$WEB" exact.test 2 8)
echo "# exact: 200=$n200 429=$n429 other=$nother duration=${dur}s bad429=$bad429"
expect=$(python3 -c "print(round(10 + 50 * $dur, 1))")
ok "exact: 200s ($n200) within 3 of burst + average*duration ($expect)" \
  python3 -c "import sys; sys.exit(0 if abs($n200 - $expect) <= 3 else 1)"
ok "exact: many requests refused (429: $n429)" test "$n429" -gt 200
is "exact: nothing but 200 and 429" 0 "$nother"
is "exact: every 429 has body 'Too Many Requests', Retry-After: 1, X-Retry-In" 0 "$bad429"
ok "exact: whoami saw exactly the 200s" test "$(grep -c . "$T/w1.log")" = "$n200"

# ---- one 429 in detail; held requests (average 2/s: maxDelay 250ms)
sleep 1.1
cat >"$T/hold.py" <<'PY'
"""hold.py PORT: three requests on hold.test (2/s, burst 1): the first at
once, the second 0.3 s later needs ~0.2 s more (held, then 200), the third
right after it would need ~0.5 s (429).  Prints status1 status2 status3
t(2nd done - 1st sent) t(2nd held) X-Retry-In Retry-After."""
import http.client, sys, time
port = int(sys.argv[1])
def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/", headers={"Host": "hold.test"})
    r = c.getresponse(); r.read(); c.close()
    return r
t0 = time.monotonic(); r1 = get()
time.sleep(0.3)
t1 = time.monotonic(); r2 = get(); t2 = time.monotonic()
r3 = get()
print(r1.status, r2.status, r3.status, "%.3f" % (t2 - t0), "%.3f" % (t2 - t1),
      r3.getheader("X-Retry-In"), r3.getheader("Retry-After"))
PY
read -r s1 s2 s3 tall theld retryin retryafter < <(timeout 10 python3 "$T/hold.py" "$WEB")
echo "# hold: $s1 $s2 $s3 total=${tall}s held=${theld}s X-Retry-In=$retryin Retry-After=$retryafter"
is "hold: first request 200" 200 "$s1"
is "hold: second request (needs < 250ms more) held, then 200" 200 "$s2"
ok "hold: second request done no sooner than its token (0.5s after the first): ${tall}s" \
  python3 -c "import sys; sys.exit(0 if $tall >= 0.49 else 1)"
is "hold: third request (would wait ~0.5s > 250ms) 429" 429 "$s3"
like "hold: X-Retry-In ~ 0.5s, as Go prints it" '^(4[5-9][0-9](\.[0-9]+)?ms|500ms)$' "$retryin"
is "hold: Retry-After = ceil(0.5s)" 1 "$retryafter"

# ---- period: 6 per minute, burst 2
is "minute: 1st 200" 200 "$(get minute.test)"
is "minute: 2nd 200 (burst 2)" 200 "$(get minute.test)"
is "minute: 3rd 429" 429 "$(get minute.test)"
is "minute: body" "Too Many Requests" "$(body)"
is "minute: Content-Type" "text/plain; charset=utf-8" "$(hdr Content-Type)"
is "minute: Content-Length" 17 "$(hdr Content-Length)"
is "minute: Retry-After = ceil(~10s)" 10 "$(hdr Retry-After)"
like "minute: X-Retry-In ~ 10s (Go duration)" '^9\.9[0-9]*s$' "$(hdr X-Retry-In)"

# ---- average 0: no limit; burst 0 counts as 1
codes=$(for i in $(seq 1 30); do get nolim.test; echo; done | sort | uniq -c | tr -s ' ')
is "average 0: 30 of 30 served" " 30 200" "$codes"
is "burst 0 (= 1): 1st 200" 200 "$(get b0.test)"
is "burst 0 (= 1): 2nd 429" 429 "$(get b0.test)"

# ---- sourceCriterion
is "requestHeaderName: key a 1" 200 "$(get hdr.test -H 'X-Api-Key: a')"
is "requestHeaderName: key a 2" 200 "$(get hdr.test -H 'X-Api-Key: a')"
is "requestHeaderName: key a 3" 200 "$(get hdr.test -H 'X-Api-Key: a')"
is "requestHeaderName: key a 4 -> 429" 429 "$(get hdr.test -H 'X-Api-Key: a')"
is "requestHeaderName: key b has its own bucket" 200 "$(get hdr.test -H 'X-Api-Key: b')"
is "requestHeaderName: no header, own bucket (1)" 200 "$(get hdr.test)"
is "requestHeaderName: no header, own bucket (2)" 200 "$(get hdr.test)"
is "requestHeaderName: no header, own bucket (3)" 200 "$(get hdr.test)"
is "requestHeaderName: no header, own bucket (4) -> 429" 429 "$(get hdr.test)"
is "requestHost: host-a 1" 200 "$(get host-a.test)"
is "requestHost: host-a 2" 200 "$(get host-a.test)"
is "requestHost: host-a 3 -> 429" 429 "$(get host-a.test)"
is "requestHost: host-b has its own bucket" 200 "$(get host-b.test)"
is "ipStrategy depth 1: 203.0.113.1" 200 "$(get xff.test -H 'X-Forwarded-For: 203.0.113.1')"
is "ipStrategy depth 1: 203.0.113.1 again -> 429" 429 "$(get xff.test -H 'X-Forwarded-For: 203.0.113.1')"
is "ipStrategy depth 1: 203.0.113.2 has its own bucket" 200 \
  "$(get xff.test -H 'X-Forwarded-For: 198.51.100.1, 203.0.113.2')"
is "ipStrategy depth 1: 2001:db8::1 has its own bucket" 200 "$(get xff.test -H 'X-Forwarded-For: 2001:db8::1')"

# ---- bad options
P='http\.middlewares\.badN@file\.rateLimit'
m() { echo "middleware bad$1@file disabled: ${P/N/$1}"; }
ok "average -1 -> error" wait_log "$(m 1)\.average: must be between 0 and"
ok "period -1s -> refused, with its key path" wait_log "$(m 1)\.period: "
ok "burst: many -> wrong type" wait_log "$(m 1)\.burst: "
ok "ipStrategy with requestHost -> mutually exclusive" \
  wait_log "$(m 2)\.sourceCriterion: ipStrategy and requestHost are mutually exclusive"
ok "requestHeaderName with requestHost -> mutually exclusive" \
  wait_log "$(m 3)\.sourceCriterion: requestHost and requestHeaderName are mutually exclusive"
ok "redis -> not supported" wait_log "$(m 4)\.redis: not supported"
ok "averge (typo) -> unknown option" wait_log "$(m 4)\.averge: unknown option"
ok "ipStrategy with requestHeaderName -> mutually exclusive" \
  wait_log "$(m 4)\.sourceCriterion: ipStrategy and requestHeaderName are mutually exclusive"
for i in 1 2 3 4; do
  ok "router badr$i disabled" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(get bad$i.test)"
done
ok "relais still running" kill -0 "$RELAIS_PID"
t_done
