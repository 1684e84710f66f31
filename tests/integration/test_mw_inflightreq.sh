#!/usr/bin/env bash
# The inFlightReq middleware (plugin inflightreq.so), black-box: relais
# with two worker threads in front of a slow whoami (?wait=).
#  - N concurrent requests of one source (requestHost, the default) over
#    separate connections spread on both workers: exactly `amount` get
#    through (200), the others get 429 "max connections reached: AMOUNT";
#    once they are done the slots are free again;
#  - a source per requestHeaderName value and per ipStrategy address;
#  - the count is released for every request that passed: 200s, 502 from
#    a dead server, and a refusal by a later middleware of the chain;
#  - a client that gives up waiting frees its slot once the server
#    answered; one that goes away in the middle of its request body frees
#    it too (the host's req_on_end, ABI 1.4);
#  - bad options disable the middleware and its router, with the key path.
#
# The plugins come from $RELAIS_PLUGIN_DIR (staged by make), or from
# $INFLIGHTREQ_SO / $IPALLOWLIST_SO when set (hand-built .so files; the
# allow list is used in one chain).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }

plugin_dir_own ${INFLIGHTREQ_SO:+"$INFLIGHTREQ_SO"} ${IPALLOWLIST_SO:+"$IPALLOWLIST_SO"}
for so in inflightreq ipallowlist; do
  [ -e "$PLUGIN_DIR/$so.so" ] ||
    { echo "Bail out! no $so.so in $RELAIS_PLUGIN_DIR (or INFLIGHTREQ_SO / IPALLOWLIST_SO)"; exit 1; }
done


start_whoami w1 --threads 2; P1=$WHOAMI_PORT
DEAD=$(free_port)
WEB=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF2
http:
  routers:
    three:  {rule: Host(\`three.test\`),  service: s, middlewares: [three]}
    hdr:    {rule: Host(\`hdr.test\`),    service: s, middlewares: [hdr]}
    xff:    {rule: Host(\`xff.test\`),    service: s, middlewares: [xff]}
    dead:   {rule: Host(\`dead.test\`),   service: dead, middlewares: [one]}
    chain:  {rule: Host(\`chain.test\`),  service: s, middlewares: [one, nobody]}
    abort:  {rule: Host(\`abort.test\`),  service: s, middlewares: [one]}
    badr1:  {rule: Host(\`bad1.test\`),   service: s, middlewares: [bad1]}
    badr2:  {rule: Host(\`bad2.test\`),   service: s, middlewares: [bad2]}
    badr3:  {rule: Host(\`bad3.test\`),   service: s, middlewares: [bad3]}
    badr4:  {rule: Host(\`bad4.test\`),   service: s, middlewares: [bad4]}
  middlewares:
    three:  {inFlightReq: {amount: 3}}
    hdr:    {inFlightReq: {amount: 1, sourceCriterion: {requestHeaderName: X-Api-Key}}}
    xff:    {inFlightReq: {amount: 1, sourceCriterion: {ipStrategy: {depth: 1}}}}
    one:    {inFlightReq: {amount: 1}}
    nobody: {ipAllowList: {sourceRange: ["192.0.2.1"]}}
    bad1:   {inFlightReq: {}}
    bad2:   {inFlightReq: {amount: 0}}
    bad3:   {inFlightReq: {amount: ten, ammount: 3}}
    bad4:   {inFlightReq: {amount: 2, sourceCriterion: {ipStrategy: {}, requestHost: true}}}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
    dead:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$DEAD"}]
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

cat >"$T/burst.py" <<'PY'
"""burst.py PORT HOST N PATH [HEADER:VALUE ...]: N requests at the same
moment, each on its own connection; prints one line per distinct
(status, body) with its count, sorted: "COUNT STATUS BODY"."""
import http.client, sys, threading, collections
port, host, n, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
hdrs = dict(h.split(":", 1) for h in sys.argv[5:])
hdrs["Host"] = host
res = collections.Counter()
lock = threading.Lock()
barrier = threading.Barrier(n)
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.connect()
    barrier.wait()
    c.request("GET", path, headers=hdrs)
    r = c.getresponse()
    b = r.read()
    key = (r.status, b.decode() if r.status != 200 else "")
    with lock:
        res[key] += 1
    c.close()
ts = [threading.Thread(target=run) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
for (st, b), cnt in sorted(res.items()):
    print(cnt, st, b)
PY
burst() { timeout 30 python3 "$T/burst.py" "$WEB" "$@"; }

# ---- amount 3, default source (requestHost), 12 at once, 1.5 s each
out=$(burst three.test 12 '/?wait=1500ms')
is "12 concurrent: exactly 3 through, 9 refused with oxy's text" \
  "3 200 
9 429 max connections reached: 3" "$out"
is "whoami got exactly the 3" 3 "$(grep -c 'wait=1500ms' "$T/w1.log")"
out=$(burst three.test 3 '/?wait=300ms')
is "after they finished: 3 concurrent all through" "3 200 " "$out"
out=$(burst three.test 20 '/?wait=1s')
is "20 concurrent: exactly 3 through, 17 refused" \
  "3 200 
17 429 max connections reached: 3" "$out"
# one refusal in detail, while 3 are in flight (seen by whoami: a busy
# machine may take a while to start them)
before=$(grep -c 'wait=1500ms' "$T/w1.log")
( burst three.test 3 '/?wait=1500ms' >/dev/null ) &
BG=$!
for _ in $(seq 1 100); do
  [ "$(grep -c 'wait=1500ms' "$T/w1.log")" -ge $((before + 3)) ] && break
  sleep 0.02
done
is "refusal: 429" 429 "$(get three.test)"
is "refusal: body" "max connections reached: 3" "$(body)"
is "refusal: Content-Type" "text/plain; charset=utf-8" "$(hdr Content-Type)"
is "refusal: Content-Length" 26 "$(hdr Content-Length)"
wait "$BG"

# ---- other sources
out=$(burst hdr.test 6 '/?wait=1s' 'X-Api-Key:k1')
is "requestHeaderName: same key, 6 at once: 1 through" "1 200 
5 429 max connections reached: 1" "$out"
cat >"$T/two.py" <<'PY'
"""two.py PORT HOST HEADER VALUE1 VALUE2 ...: one request per value at the
same moment; prints the statuses in order of the values."""
import http.client, sys, threading
port, host, name, vals = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
st = [0] * len(vals)
barrier = threading.Barrier(len(vals))
def run(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.connect(); barrier.wait()
    c.request("GET", "/?wait=800ms", headers={"Host": host, name: vals[i]})
    r = c.getresponse(); r.read(); st[i] = r.status; c.close()
ts = [threading.Thread(target=run, args=(i,)) for i in range(len(vals))]
for t in ts: t.start()
for t in ts: t.join()
print(" ".join(map(str, st)))
PY
is "requestHeaderName: 3 keys at once, all through" "200 200 200" \
  "$(timeout 10 python3 "$T/two.py" "$WEB" hdr.test X-Api-Key k1 k2 k3)"
is "ipStrategy depth 1: 3 addresses at once, all through" "200 200 200" \
  "$(timeout 10 python3 "$T/two.py" "$WEB" xff.test X-Forwarded-For 203.0.113.1 '198.51.100.7, 203.0.113.2' 2001:db8::1)"
out=$(burst xff.test 4 '/?wait=800ms' 'X-Forwarded-For:203.0.113.9')
is "ipStrategy depth 1: one address, 4 at once: 1 through" "1 200 
3 429 max connections reached: 1" "$out"

# ---- every request that passed releases its slot
codes=$(for i in 1 2 3 4 5; do get dead.test; echo; done | tr '\n' ' ')
is "dead server: 502 each time (never 429: the 502 releases the slot)" "502 502 502 502 502 " "$codes"
codes=$(for i in 1 2 3 4 5; do get chain.test; echo; done | tr '\n' ' ')
is "later middleware refuses: 403 each time (never 429)" "403 403 403 403 403 " "$codes"
is "amount 1, sequential requests: 200" 200 "$(get abort.test)"
is "amount 1, sequential requests: 200 again" 200 "$(get abort.test)"

# ---- clients that go away
# one that gives up waiting: relais keeps the exchange until the server
# answers, then the slot is free
timeout 5 curl -s -o /dev/null --max-time 0.3 -H 'Host: abort.test' "http://127.0.0.1:$WEB/?wait=1s"
sleep 1.2
is "client gave up waiting: the slot is free once the server answered" 200 "$(get abort.test)"
# one that goes away in the middle of its request body: relais drops the
# exchange without on_response, so the slot stays taken (host limitation)
timeout 5 python3 - "$WEB" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /upload HTTP/1.1\r\nHost: abort.test\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
time.sleep(0.3)
s.close()
PY
sleep 1
ok "client gone in the middle of its upload: its slot is released (req_on_end)" \
  test "$(get abort.test)" = 200

# ---- bad options
P='http\.middlewares\.badN@file\.inFlightReq'
m() { echo "middleware bad$1@file disabled: ${P/N/$1}"; }
ok "no amount -> required" wait_log "$(m 1)\.amount: required"
ok "amount 0 -> must be between 1 and" wait_log "$(m 2)\.amount: must be between 1 and"
ok "amount: ten -> wrong type" wait_log "$(m 3)\.amount: "
ok "ammount (typo) -> unknown option" wait_log "$(m 3)\.ammount: unknown option"
ok "ipStrategy with requestHost -> mutually exclusive" \
  wait_log "$(m 4)\.sourceCriterion: ipStrategy and requestHost are mutually exclusive"
for i in 1 2 3 4; do
  ok "router badr$i disabled" wait_log "router badr$i@file disabled: .*bad$i@file"
  is "bad$i.test not served" 404 "$(get bad$i.test)"
done
ok "relais still running" kill -0 "$RELAIS_PID"
t_done
