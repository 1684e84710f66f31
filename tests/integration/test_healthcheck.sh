#!/usr/bin/env bash
# test_healthcheck.sh — loadBalancer.healthCheck (active probes from the
# control thread) and loadBalancer.passiveHealthCheck (failures of proxied
# requests), black box, with interval 200ms and timeout 100ms:
#
#  - a killed server leaves the rotation within interval + timeout (50
#    requests all reach the other one) and returns once restarted on the
#    same port (logged "is down: ..." then "is up");
#  - a /health answering 503 (default 2xx/3xx check) and a status other
#    than the expected `status` mark the server down, and it comes back;
#  - the probe sends method, path with query, hostname (as Host, once)
#    and headers (seen by a server that logs request heads);
#  - every server down: 503 "no available server";
#  - passive, maxFailedAttempts 2: a server refusing connections gets
#    exactly 2 requests (502) and then none; a reload that leaves the
#    service unchanged keeps it down without a new failure; after
#    failureWindow it is tried again (exactly 2 more failures).
. "$(dirname "$0")/lib.sh"

# get PORT HOST N [PATH]: N requests on new connections; prints one line
# per request: the X-Whoami-Name, or ERR:<status>, or EXC:<name>.
cat >"$T/get.py" <<'PYEOF'
import http.client, sys
port, host, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
path = sys.argv[4] if len(sys.argv) > 4 else "/"
for _ in range(n):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status == 200:
            print(r.getheader("X-Whoami-Name", "-"))
        else:
            print("ERR:%d:%s" % (r.status, body.decode("latin-1").strip()))
    except Exception as e:
        print("EXC:" + type(e).__name__)
PYEOF
get() { python3 "$T/get.py" "$@"; }
# count WORD: how many lines of stdin are exactly WORD.
count() { grep -cx -- "$1" || true; }

# A server that logs every request head to $T/heads.log and answers 200.
cat >"$T/heads.py" <<'PYEOF'
import socket, sys
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d: break
            data += d
        with open(log, "ab") as f:
            f.write(data.split(b"\r\n\r\n")[0] + b"\r\n--\r\n")
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except Exception:
        pass
    c.close()
PYEOF

start_whoami a1; A1=$WHOAMI_PORT
start_whoami a2; A2=$WHOAMI_PORT; A2_PID=${PIDS[-1]}
start_whoami s1; S1=$WHOAMI_PORT
start_whoami s2; S2=$WHOAMI_PORT
start_whoami p1; P1=$WHOAMI_PORT
HP=$(free_port)
python3 "$T/heads.py" "$HP" "$T/heads.log" >"$T/heads.out" 2>&1 &
PIDS+=($!)
wait_port "$HP"
DEAD=$(free_port)   # nothing listens there: connections are refused
DEAD2=$(free_port)

mkdir -p "$T/dyn"
# version EXTRA: the dynamic configuration; EXTRA adds a service (reload
# that touches none of the others).
version() {
  cat <<EOF
http:
  routers:
    act: {rule: "Host(\`act\`)", service: act}
    st: {rule: "Host(\`st\`)", service: st}
    hd: {rule: "Host(\`hd\`)", service: hd}
    dn: {rule: "Host(\`dn\`)", service: dn}
    pv: {rule: "Host(\`pv\`)", service: pv}
  services:
    act:
      loadBalancer:
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms}
        servers: [{url: "http://127.0.0.1:$A1"}, {url: "http://127.0.0.1:$A2"}]
    st:
      loadBalancer:
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms, status: 200}
        servers: [{url: "http://127.0.0.1:$S1"}, {url: "http://127.0.0.1:$S2"}]
    hd:
      loadBalancer:
        healthCheck:
          path: "/hc?x=1"
          interval: 200ms
          timeout: 100ms
          method: HEAD
          hostname: check.example
          headers: {X-Check: "yes", X-Other: "two words"}
        servers: [{url: "http://127.0.0.1:$HP"}]
    dn:
      loadBalancer:
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms}
        servers: [{url: "http://127.0.0.1:$DEAD2"}]
    pv:
      loadBalancer:
        passiveHealthCheck: {failureWindow: 3s, maxFailedAttempts: 2}
        servers: [{url: "http://127.0.0.1:$P1"}, {url: "http://127.0.0.1:$DEAD"}]
$1
EOF
}
publish() {
  version "$1" >"$T/dyn/dynamic.yaml.tmp" && mv -f "$T/dyn/dynamic.yaml.tmp" "$T/dyn/dynamic.yaml"
}
applied() { grep -Ec 'configuration [0-9]+ applied' "$T/relais.log" 2>/dev/null || true; }

publish ""
PORT=$(free_port)
static_config "$T/relais.yaml" "$PORT" "$T/dyn/dynamic.yaml"
start_relais "$T/relais.yaml" "$PORT" || { echo "Bail out! relais did not start"; exit 1; }
for i in $(seq 1 100); do
  [ "$(get "$PORT" act 1)" = a1 ] || [ "$(get "$PORT" act 1)" = a2 ] && break
  sleep 0.05
done

# ---- active: a dead server leaves, a restarted one returns --------------
out=$(get "$PORT" act 50)
is "act: both servers serve at first (a1)" 25 "$(count a1 <<<"$out")"
is "act: both servers serve at first (a2)" 25 "$(count a2 <<<"$out")"
kill "$A2_PID"; wait "$A2_PID" 2>/dev/null
sleep 0.35   # interval + timeout + margin
out=$(get "$PORT" act 50)
is "act: 300ms after a2 died, 50/50 requests reach a1" 50 "$(count a1 <<<"$out")"
ok "act: the down server is logged with the reason" \
  grep -Eq "service act@file: server http://127.0.0.1:$A2 is down: .+" "$T/relais.log"
is "act: logged once" 1 "$(grep -c "server http://127.0.0.1:$A2 is down" "$T/relais.log")"
"$WHOAMI" --addr 127.0.0.1 --port "$A2" --name a2 --log "$T/a2.log" >"$T/a2b.out" 2>&1 &
PIDS+=($!)
wait_port "$A2"
ok "act: the server is back (logged)" wait_log "service act@file: server http://127.0.0.1:$A2 is up" 2
out=$(get "$PORT" act 50)
n2=$(count a2 <<<"$out")
ok "act: after its return a2 serves again (20-30 of 50, got $n2; no error)" \
  test "$n2" -ge 20 -a "$n2" -le 30 -a "$(count a1 <<<"$out")" = $((50 - n2))

# default status check: /health answering 503 marks down, 200 brings back
curl -s -o /dev/null -X POST --data 503 "http://127.0.0.1:$A1/health"
sleep 0.35
out=$(get "$PORT" act 50)
is "act: /health 503 takes a1 out (all to a2)" 50 "$(count a2 <<<"$out")"
like "act: reason names the status" "server http://127.0.0.1:$A1 is down: received error status code 503" "$(cat "$T/relais.log")"
curl -s -o /dev/null -X POST --data 200 "http://127.0.0.1:$A1/health"
ok "act: a1 back after /health 200" wait_log "server http://127.0.0.1:$A1 is up" 2

# ---- expected status mismatch -----------------------------------------
curl -s -o /dev/null -X POST --data 201 "http://127.0.0.1:$S2/health"
sleep 0.35
out=$(get "$PORT" st 50)
is "st: status 201 with status: 200 expected takes s2 out" 50 "$(count s1 <<<"$out")"
like "st: reason" "server http://127.0.0.1:$S2 is down: received status code 201, expected 200" "$(cat "$T/relais.log")"
curl -s -o /dev/null -X POST --data 200 "http://127.0.0.1:$S2/health"
ok "st: s2 back" wait_log "server http://127.0.0.1:$S2 is up" 2
out=$(get "$PORT" st 50)
n2=$(count s2 <<<"$out")
ok "st: s2 serves again (20-30 of 50, got $n2; no error)" \
  test "$n2" -ge 20 -a "$n2" -le 30 -a "$(count s1 <<<"$out")" = $((50 - n2))

# ---- method, path, hostname and headers of the probe ----------------------
for i in $(seq 1 40); do grep -q '^HEAD' "$T/heads.log" 2>/dev/null && break; sleep 0.05; done
# the first probe's head, one header per line (the port probe of wait_port
# logged an empty record first)
head1=$(python3 -c 'import sys
recs = [r for r in open(sys.argv[1], "rb").read().decode("latin-1").split("\r\n--\r\n") if r]
print(recs[0].replace("\r", "") if recs else "")' "$T/heads.log")
is "hd: request line" "HEAD /hc?x=1 HTTP/1.1" "$(head -n1 <<<"$head1")"
is "hd: hostname as the only Host" "Host: check.example" "$(grep -i '^host:' <<<"$head1")"
is "hd: header X-Check" "X-Check: yes" "$(grep '^X-Check:' <<<"$head1")"
is "hd: header X-Other" "X-Other: two words" "$(grep '^X-Other:' <<<"$head1")"
ok "hd: the healthy server is never logged down" \
  bash -c "! grep -q 'server http://127.0.0.1:$HP is down' '$T/relais.log'"

# ---- all servers down -----------------------------------------------------
wait_log "service dn@file: server http://127.0.0.1:$DEAD2 is down" 2
is "dn: every server down -> 503 no available server" "ERR:503:no available server" "$(get "$PORT" dn 1)"

# ---- passive ----------------------------------------------------------------
out=$(get "$PORT" pv 20)
is "pv: exactly 2 requests reach the refusing server" 2 "$(grep -c '^ERR:502' <<<"$out")"
is "pv: the other 18 reach p1" 18 "$(count p1 <<<"$out")"
ok "pv: logged down" wait_log "service pv@file: server http://127.0.0.1:$DEAD is down: 2 failed attempt" 1
t_down=$(date +%s.%N)
n=$(applied)
publish "    extra:
      loadBalancer:
        servers: [{url: \"http://127.0.0.1:$P1\"}]"
for i in $(seq 1 100); do [ "$(applied)" -gt "$n" ] && break; sleep 0.05; done
ok "pv: reload applied" test "$(applied)" -gt "$n"
out=$(get "$PORT" pv 20)
is "pv: after a reload of other objects the server is still down (20/20 to p1)" 20 "$(count p1 <<<"$out")"
is "pv: no second down line" 1 "$(grep -c "server http://127.0.0.1:$DEAD is down" "$T/relais.log")"
ok "pv: back after failureWindow (logged)" wait_log "server http://127.0.0.1:$DEAD is up" 5
t_up=$(date +%s.%N)
ok "pv: not back before the 3s window (took $(echo "$t_up - $t_down" | bc)s)" \
  test "$(echo "$t_up - $t_down >= 2.5" | bc)" = 1
out=$(get "$PORT" pv 20)
is "pv: tried again: exactly 2 more failures" 2 "$(grep -c '^ERR:502' <<<"$out")"

t_done
