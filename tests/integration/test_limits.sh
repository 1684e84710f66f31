#!/usr/bin/env bash
# test_limits.sh — request and connection limits, black box (431, 414 and
# the timeouts are in test_proxy.sh):
#
#  - http.maxBodyBytes on the entry point: a declared Content-Length over
#    it is 413 before anything reaches the server, a chunked body growing
#    over it is cut with 413; a router's maxBodyBytes replaces the entry
#    point's (lower: 413 where the entry point allows; higher: allowed
#    where the entry point would refuse);
#  - http.maxHeaderCount: one field too many is 431;
#  - transport.maxConnections on an entry point: with 3 connections open,
#    a 4th waits in the backlog (not refused) and is served as soon as
#    one ends; another entry point is not held up; global.maxConnections
#    caps all entry points together the same way; the wait is logged;
#  - serversTransports.X.maxConnsPerHost 2: 5 parallel slow requests to
#    one server are served in waves of 2 (all 200), and with a 1 s
#    dialTimeout the ones that cannot get a place in time are 504.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
A=$(free_port); B=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    a: {rule: "Host(\`a.test\`)", service: w1}
    low: {rule: "Host(\`low.test\`)", service: w1, maxBodyBytes: 100}
    high: {rule: "Host(\`high.test\`)", service: w1, maxBodyBytes: 5000}
    cap2: {rule: "Host(\`cap2.test\`)", service: cap2}
    cap2short: {rule: "Host(\`cap2short.test\`)", service: cap2short}
  serversTransports:
    two: {maxConnsPerHost: 2, forwardingTimeouts: {dialTimeout: 10s}}
    twoshort: {maxConnsPerHost: 2, forwardingTimeouts: {dialTimeout: 1s}}
  services:
    w1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
    cap2: {loadBalancer: {serversTransport: two, servers: [{url: "http://127.0.0.1:$P1"}]}}
    cap2short: {loadBalancer: {serversTransport: twoshort, servers: [{url: "http://127.0.0.1:$P1"}]}}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  capped:
    address: "127.0.0.1:$A"
    http: {maxBodyBytes: 1000, maxHeaderCount: 20}
    transport: {maxConnections: 3}
  free:
    address: "127.0.0.1:$B"
global:
  maxConnections: 5
providers:
  file:
    filename: "$T/dyn.yaml"
log:
  level: INFO
workers: 1
EOF
start_relais "$T/relais.yaml" "$A"
wait_log "configuration [0-9]+ applied: 5 routers" 5

st() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
head -c 1000 /dev/zero | tr '\0' x >"$T/b1000"
head -c 1001 /dev/zero | tr '\0' x >"$T/b1001"
head -c 101 /dev/zero | tr '\0' x >"$T/b101"
head -c 4000 /dev/zero | tr '\0' x >"$T/b4000"

# ---- body caps
: >"$T/w1.log"
is "Content-Length at the cap: 200" "200" \
  "$(st -H 'Host: a.test' --data-binary @"$T/b1000" "http://127.0.0.1:$A/upload")"
is "Content-Length over the cap: 413" "413" \
  "$(st -H 'Host: a.test' --data-binary @"$T/b1001" "http://127.0.0.1:$A/upload")"
is "chunked body over the cap: 413" "413" \
  "$(st -H 'Host: a.test' -H 'Transfer-Encoding: chunked' --data-binary @"$T/b4000" \
     "http://127.0.0.1:$A/upload")"
is "the refused Content-Length request never reached the server" "1" \
  "$(grep -c '^POST /upload' "$T/w1.log")"
is "router maxBodyBytes below the entry point's: 413" "413" \
  "$(st -H 'Host: low.test' --data-binary @"$T/b101" "http://127.0.0.1:$A/upload")"
is "router maxBodyBytes above the entry point's: 200" "200" \
  "$(st -H 'Host: high.test' --data-binary @"$T/b4000" "http://127.0.0.1:$A/upload")"
is "... and the whole body arrived" "received 4000 bytes" \
  "$(curl -s -H 'Host: high.test' --data-binary @"$T/b4000" "http://127.0.0.1:$A/upload" | cut -d' ' -f1-3)"

# ---- header count
hdrs=(); for i in $(seq 1 19); do hdrs+=(-H "X-H$i: v"); done
# curl adds Host, User-Agent and Accept: 19 + 3 = 22 > 20
is "more fields than maxHeaderCount: 431" "431" "$(st "${hdrs[@]}" -H 'Host: a.test' "http://127.0.0.1:$A/")"
is "at most maxHeaderCount fields: 200" "200" \
  "$(st "${hdrs[@]:0:34}" -H 'Host: a.test' "http://127.0.0.1:$A/")"

# ---- connection caps
# slow PORT N: N requests taking 1.5 s each, in parallel, on separate
# connections; their codes in $T/slow.PORT.N
SLOWPIDS=()
slow() {
  local i
  for i in $(seq 1 "$2"); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -H 'Host: a.test' \
      "http://127.0.0.1:$1/?wait=1500ms" >>"$T/slow.$1" &
    SLOWPIDS+=($!)
  done
}
# waits for the slow requests only (not the servers)
wait_slow() { wait "${SLOWPIDS[@]}"; SLOWPIDS=(); }
# timed PORT: code and milliseconds of one request
timed() {
  local t0 t1 code
  t0=$(date +%s%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: a.test' "http://127.0.0.1:$1/")
  t1=$(date +%s%N)
  echo "$code $(( (t1 - t0) / 1000000 ))"
}
slow "$A" 3
sleep 0.3
read -r code ms <<<"$(timed "$B")"
is "another entry point is not held up" "200" "$code"
ok "... it answers at once ($ms ms)" test "$ms" -lt 700
read -r code ms <<<"$(timed "$A")"
is "the 4th connection on the capped entry point is served" "200" "$code"
ok "... once one of the 3 ended (waited $ms ms, > 900)" test "$ms" -gt 900
ok "the wait is logged" wait_log "capped: [0-9]+ connections open \\([0-9]+ here\\): new ones wait" 1
wait_slow
is "the 3 slow ones were answered" "200 200 200" "$(tr '\n' ' ' <"$T/slow.$A" | sed 's/ $//')"
# global: 3 on capped + 2 on free = 5 = global.maxConnections
slow "$A" 3
slow "$B" 2
sleep 0.3
read -r code ms <<<"$(timed "$B")"
is "global cap: a 6th connection is served" "200" "$code"
ok "... after one of the 5 ended (waited $ms ms, > 900)" test "$ms" -gt 900
wait_slow

# ---- maxConnsPerHost: waves of 2
# par.py PORT HOST N WAIT: N parallel requests; prints "code ms" per
# request, in completion order
cat >"$T/par.py" <<'PYEOF'
import http.client, sys, threading, time
port, host, n, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.time(); out = []; lock = threading.Lock()
def one():
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        c.request("GET", "/?wait=" + wait, headers={"Host": host})
        r = c.getresponse(); r.read(); code = r.status
    except Exception as e:
        code = type(e).__name__
    with lock:
        out.append("%s %d" % (code, (time.time() - t0) * 1000))
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PYEOF
python3 "$T/par.py" "$B" cap2.test 5 600ms >"$T/waves.out"
is "maxConnsPerHost 2: all 5 answered 200" "200 200 200 200 200" \
  "$(cut -d' ' -f1 "$T/waves.out" | tr '\n' ' ' | sed 's/ $//')"
mapfile -t ms < <(cut -d' ' -f2 "$T/waves.out" | sort -n)
ok "the first two at once (${ms[1]} ms < 1100)" test "${ms[1]}" -lt 1100
ok "then waves of two: the 3rd after one finished (${ms[2]} ms >= 1150)" test "${ms[2]}" -ge 1150
ok "the 5th in the third wave (${ms[4]} ms >= 1750)" test "${ms[4]}" -ge 1750
python3 "$T/par.py" "$B" cap2short.test 5 1500ms >"$T/short.out"
is "with dialTimeout 1s: 2 served" "2" "$(grep -c '^200 ' "$T/short.out")"
is "... and 3 are 504 (no place in time)" "3" "$(grep -c '^504 ' "$T/short.out")"
ok "the refusal is logged" \
  wait_log "no place on http://127.0.0.1:$P1 \\(maxConnsPerHost 2\\) in time: 504" 1
ok "relais still running" kill -0 "$RELAIS_PID"

t_done
