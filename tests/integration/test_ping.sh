#!/usr/bin/env bash
# test_ping.sh — ping and the graceful drain, black box (Traefik's ping
# and entryPoints.X.transport.lifeCycle):
#
#  - GET /ping on ping.entryPoint answers 200 "OK" (text/plain), HEAD 200
#    without a body, POST /ping and /ping on another entry point go to
#    the routers;
#  - manualRouting: only a router to ping@internal answers, with its
#    middlewares' effect;
#  - SIGTERM with requestAcceptGraceTimeout 1s: /ping turns 503 "Service
#    Unavailable" at once while requests are still served and new
#    connections accepted; then the listener closes and a request in
#    flight still completes within graceTimeOut;
#  - a ping entry point that does not exist is a static configuration
#    error naming the key.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
WP=$(free_port); TP=$(free_port); MP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    app: {rule: "Host(\`app.test\`)", service: w1}
    hc:
      rule: "Host(\`hc.test\`) && Path(\`/healthz\`)"
      service: ping@internal
      middlewares: [tag]
  middlewares:
    tag: {headers: {customResponseHeaders: {X-Tag: manual}}}
  services:
    w1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
EOF
cat >"$T/auto.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WP"
    transport:
      lifeCycle: {requestAcceptGraceTimeout: 1s, graceTimeOut: 5s}
  traefik:
    address: "127.0.0.1:$TP"
    transport:
      lifeCycle: {requestAcceptGraceTimeout: 1s, graceTimeOut: 5s}
ping: {}
providers:
  file:
    filename: "$T/dyn.yaml"
log:
  level: INFO
workers: 2
EOF
cat >"$T/manual.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$MP"
ping:
  manualRouting: true
  terminatingStatusCode: 500
providers:
  file:
    filename: "$T/dyn.yaml"
log:
  level: INFO
workers: 1
EOF
start_relais "$T/auto.yaml" "$TP"
AUTO=$RELAIS_PID
wait_port "$WP"
start_relais "$T/manual.yaml" "$MP"
MANUAL=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5

# ---- automatic ping on its entry point
curl -s -D "$T/h1" -o "$T/b1" "http://127.0.0.1:$TP/ping"
is "GET /ping: 200" "200" "$(head -n1 "$T/h1" | cut -d' ' -f2)"
is "GET /ping: body OK" "OK" "$(cat "$T/b1")"
is "GET /ping: text/plain" "text/plain; charset=utf-8" \
  "$(grep -i '^content-type:' "$T/h1" | cut -d' ' -f2- | tr -d '\r')"
is "HEAD /ping: 200, no body" "200 0" \
  "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$TP/ping")"
is "POST /ping goes to the routers (404)" "404" \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$TP/ping")"
is "/ping on another entry point goes to the routers" "404" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WP/ping")"
is "/ping/x is not ping" "404" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TP/ping/x")"

# ---- manual routing
is "manualRouting: no automatic /ping" "404" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/ping")"
curl -s -D "$T/h2" -o "$T/b2" -H 'Host: hc.test' "http://127.0.0.1:$MP/healthz"
is "manualRouting: the router to ping@internal answers OK" "200 OK" \
  "$(head -n1 "$T/h2" | cut -d' ' -f2) $(cat "$T/b2")"
is "... through its middlewares" "manual" "$(grep -i '^x-tag:' "$T/h2" | cut -d' ' -f2 | tr -d '\r')"
kill -TERM "$MANUAL"
sleep 0.2

# ---- graceful drain of the automatic one
curl -s --max-time 10 -o "$T/slow.out" -w '%{http_code}' -H 'Host: app.test' \
  "http://127.0.0.1:$WP/data?size=1000&wait=2500ms" >"$T/slow.code" &
SLOW=$!
sleep 0.2
t0=$(date +%s%N)
kill -TERM "$AUTO"
sleep 0.2
curl -s -D "$T/h3" -o "$T/b3" "http://127.0.0.1:$TP/ping"
is "stopping: /ping answers 503 at once" "503" "$(head -n1 "$T/h3" | cut -d' ' -f2)"
is "... with Traefik's body" "Service Unavailable" "$(cat "$T/b3")"
is "stopping: requests are still served" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: app.test' "http://127.0.0.1:$WP/")"
# then, after requestAcceptGraceTimeout, new connections are refused
refused() { ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$WP/" 2>/dev/null; }
for _ in $(seq 1 60); do refused && break; sleep 0.05; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "the listener closes after requestAcceptGraceTimeout ($ms ms, >= 900)" test "$ms" -ge 900
ok "... and not much later (< 2500 ms)" test "$ms" -lt 2500
wait "$SLOW"
is "the request in flight completes" "200 1000" "$(cat "$T/slow.code") $(wc -c <"$T/slow.out")"
for _ in $(seq 1 100); do kill -0 "$AUTO" 2>/dev/null || break; sleep 0.05; done
ok "relais exits once drained" bash -c "! kill -0 $AUTO 2>/dev/null"
ok "the acceptance grace was logged" wait_log "accepting requests for 1000 ms more \\(requestAcceptGraceTimeout\\)" 1

# ---- configuration errors
sed 's/^ping: {}/ping: {entryPoint: nope}/' "$T/auto.yaml" >"$T/bad.yaml"
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1)
like "an unknown ping entry point is named" "bad.yaml: ping.entryPoint: no TCP entry point named \"nope\"" "$out"

t_done
