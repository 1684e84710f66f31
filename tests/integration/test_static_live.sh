#!/bin/bash
# test_static_live.sh — static options that change at run time (issue 10):
# SIGHUP re-reads the static file and applies its runtime-safe part
# (log.level, accessLog, entryPoints) without a restart; the other keys
# are warned about and left; an error changes nothing.
#
# Two whoami backends: w1 behind router r_web (entry point web, always
# there), w2 behind r_extra (entry point extra, added and removed by
# SIGHUP).  The API and ping answer on entry point traefik.  Last, a
# cluster-mode node (one etcd member) takes the etcd key P/static as its
# overlay: applied, refused, deleted.
. "$(dirname "$0")/lib.sh"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || { echo "Bail out! $PYTHON not found (CI installs it: see tests/run.sh)"; exit 1; }
LOADGEN="$RELAIS_SRCDIR/tests/integration/loadgen.py"

start_whoami w1 || { echo "Bail out! whoami w1 did not start"; exit 1; }
W1=$WHOAMI_PORT
start_whoami w2 || { echo "Bail out! whoami w2 did not start"; exit 1; }
W2=$WHOAMI_PORT
P_WEB=$(free_port)
P_TR=$(free_port)
P_EXTRA=$(free_port)
P_EXTRA2=$(free_port)
P_BUSY=$(free_port)

cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r_web:
      rule: "PathPrefix(\`/\`)"
      entryPoints: [web]
      service: s1
    r_extra:
      rule: "PathPrefix(\`/\`)"
      entryPoints: [extra]
      service: s2
  services:
    s1:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$W1"}]
    s2:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$W2"}]
EOF

# static [LEVEL] [EXTRA-ENTRY-POINTS-YAML] [ACCESSLOG-YAML] [WORKERS]:
# writes the static file.
static() {
  cat >"$T/static.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$P_WEB"
  traefik:
    address: "127.0.0.1:$P_TR"
${2:-}
api:
  insecure: true
ping: {}
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
log:
  level: ${1:-DEBUG}
workers: ${4:-2}
${3:-}
EOF
}

# hup N: sends SIGHUP and waits until the relais log holds N lines
# "static configuration applied" (or an error / no-change line, any of
# which counts as the N-th answer to a SIGHUP).
HUPS=0
hup() {
  local i
  HUPS=$((HUPS + 1))
  kill -HUP "$RELAIS_PID"
  for i in $(seq 1 100); do
    [ "$(grep -cE 'SIGHUP: reloading the static' "$T/relais.log")" -ge "$HUPS" ] &&
      [ "$(grep -cE 'static configuration applied|static configuration not changed|no runtime-safe static option' "$T/relais.log")" -ge "$HUPS" ] &&
      return 0
    sleep 0.05
  done
  echo "# SIGHUP $HUPS not answered in 5 s"
  return 1
}

# get PORT PATH: "STATUS BODY NAME" of GET PATH on PORT ("000" and curl's
# exit status when there was no answer).
get() {
  local out rc
  out=$(curl -s --max-time 5 -D "$T/h" -o "$T/b" -w '%{http_code}' "http://127.0.0.1:$1$2")
  rc=$?
  [ "$rc" = 0 ] || { echo "000 curl-exit-$rc"; return; }
  echo "$out $(cat "$T/b") $(tr -d '\r' <"$T/h" | sed -n 's/^X-Whoami-Name: //Ip')"
}

# refused PORT: curl's exit status on PORT once it is 7 (connection
# refused), waiting up to 2 s: the workers close a removed entry point's
# listeners on their threads, just after the change is logged.
refused() {
  local rc i
  for i in $(seq 1 40); do
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$1/bench"
    rc=$?
    [ "$rc" = 7 ] && break
    sleep 0.05
  done
  echo "$rc"
}

api() { curl -s --max-time 5 "http://127.0.0.1:$P_TR$1"; }
pj() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

EXTRA="  extra:
    address: \"127.0.0.1:$P_EXTRA\""

static DEBUG
start_relais "$T/static.yaml" "$P_WEB" || { echo "Bail out! relais did not start"; exit 1; }
wait_port "$P_TR"
wait_log 'configuration [0-9]+ applied: 4 routers' 5 ||
  wait_log 'configuration [0-9]+ applied' 5

is "web serves r_web (w1)" "200 1 w1" "$(get "$P_WEB" /bench)"
is "ping answers on traefik" "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_TR/ping")"
like "r_extra names an entry point that does not exist: disabled" \
  'disabled .*entry point \\"extra\\" does not exist' \
  "$(api /api/http/routers/r_extra@file | pj 'd["status"] + " " + json.dumps(d.get("error"))')"

# ---- nothing changed
ok "SIGHUP with the same file" hup
ok "no change is said so" wait_log 'no runtime-safe static option .* changed' 2

# ---- an entry point added
static DEBUG "$EXTRA"
ok "SIGHUP: entry point extra added" hup
ok "the change is logged" wait_log 'static configuration applied from .*static.yaml: entry points added: extra' 2
is "extra serves r_extra (w2)" "200 1 w2" "$(get "$P_EXTRA" /bench)"
is "web still serves r_web" "200 1 w1" "$(get "$P_WEB" /bench)"
is "r_extra enabled, using extra" "enabled ['extra']" \
  "$(api /api/http/routers/r_extra@file | pj 'd["status"] + " " + str(d.get("using"))')"
is "the API lists the entry points by name" "['extra', 'traefik', 'web']" \
  "$(api /api/entrypoints | pj '[e["name"] for e in d]')"
is "ping still answers on traefik" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_TR/ping")"

# ---- an entry point removed while a slow request runs on it
curl -s --max-time 10 -o "$T/slow.body" -w '%{http_code}' \
  "http://127.0.0.1:$P_EXTRA/bench?wait=1500ms" >"$T/slow.code" 2>/dev/null &
SLOW=$!
sleep 0.4
static DEBUG
ok "SIGHUP: entry point extra removed" hup
ok "the removal is logged" wait_log 'entry points removed: extra' 2
is "a new connection to extra is refused (curl exit 7)" "7" "$(refused "$P_EXTRA")"
wait "$SLOW"
is "the slow request in flight on extra completed" "200 1" \
  "$(cat "$T/slow.code") $(cat "$T/slow.body")"
like "r_extra: the entry point is missing again" \
  'disabled .*entry point \\"extra\\" does not exist' \
  "$(api /api/http/routers/r_extra@file | pj 'd["status"] + " " + json.dumps(d.get("error"))')"
is "web still serves r_web" "200 1 w1" "$(get "$P_WEB" /bench)"

# ---- a changed entry point: extra on another port
static DEBUG "$EXTRA"
ok "SIGHUP: extra back" hup
is "extra serves again" "200 1 w2" "$(get "$P_EXTRA" /bench)"
static DEBUG "  extra:
    address: \"127.0.0.1:$P_EXTRA2\""
ok "SIGHUP: extra moved to another port" hup
ok "the change is logged as such" wait_log 'entry points changed: extra' 2
is "extra serves on its new port" "200 1 w2" "$(get "$P_EXTRA2" /bench)"
is "its old port is closed (curl exit 7)" "7" "$(refused "$P_EXTRA")"
static DEBUG
ok "SIGHUP: extra removed again" hup

# ---- 5 reloads under a bounded keep-alive load on the unchanged web: the
# load runs until the reloads are done (at most 20000 requests or 15 s)
"$PYTHON" "$LOADGEN" --port "$P_WEB" --path /bench --conns 4 --max 20000 --seconds 15 \
  --stop "$T/stop" --ready "$T/load.ready" >"$T/load.out" 2>"$T/load.err" &
LOAD=$!
for _ in $(seq 1 100); do [ -e "$T/load.ready" ] && break; sleep 0.05; done
sleep 0.3
t0=$(date +%s%N)
for k in 1 2 3 4 5; do
  if [ $((k % 2)) = 1 ]; then static INFO "$EXTRA"; else static DEBUG; fi
  hup || break
  sleep 0.2
done
touch "$T/stop"
wait "$LOAD"
echo "# load during 5 reloads: $(tr '\n' ' ' <"$T/load.out") (reloads took $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
sed 's/^/# /' "$T/load.err" | head -5
is "no request failed during the reloads" "errors=0 non200=0" \
  "$(grep -E '^(errors|non200)=' "$T/load.out" | tr '\n' ' ' | sed 's/ $//')"
r=$(sed -n 's/^requests=//p' "$T/load.out")
ok "the load ran all along the reloads ($r requests, stopped by the test, not by its bound)" \
  test "${r:-0}" -gt 100 -a "${r:-0}" -lt 20000
is "extra is there after the odd count of reloads" "200 1 w2" "$(get "$P_EXTRA" /bench)"

# ---- log level: DEBUG then INFO changes what is logged
static DEBUG
ok "SIGHUP: log level DEBUG" hup
n0=$(grep -c 'request refused with 400' "$T/relais.log")
is "a malformed request is refused" "400" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Bad Header: x' "http://127.0.0.1:$P_WEB/")"
ok "at DEBUG it is logged" wait_log 'request refused with 400' 2
static INFO
ok "SIGHUP: log level INFO" hup
ok "the new level is logged" wait_log 'static configuration applied from .*: log level INFO' 2
n1=$(grep -c 'request refused with 400' "$T/relais.log")
curl -s -o /dev/null -H 'Bad Header: x' "http://127.0.0.1:$P_WEB/"
sleep 0.3
is "at INFO it is not" "$n1" "$(grep -c 'request refused with 400' "$T/relais.log")"
is "(one line at DEBUG)" "1" "$((n1 - n0))"

# ---- access log: on, moved, off
ALA="accessLog:
  filePath: \"$T/a.log\""
ALB="accessLog:
  filePath: \"$T/b.log\""
static INFO "" "$ALA"
ok "SIGHUP: access log on" hup
ok "logged" wait_log "access log $T/a.log" 2
get "$P_WEB" "/bench?id=on1" >/dev/null
# the slow request starts on the first log and ends on the second
curl -s --max-time 10 -o /dev/null "http://127.0.0.1:$P_WEB/bench?id=slow1&wait=1s" &
SLOW=$!
sleep 0.3
static INFO "" "$ALB"
ok "SIGHUP: access log moved" hup
get "$P_WEB" "/bench?id=mv1" >/dev/null
wait "$SLOW"
sleep 0.5
like "a.log has the request made while it was on" 'id=on1' "$(cat "$T/a.log" 2>/dev/null)"
like "a request in flight finished writing to the old log" 'id=slow1' "$(cat "$T/a.log" 2>/dev/null)"
like "b.log has the request made after the move" 'id=mv1' "$(cat "$T/b.log" 2>/dev/null)"
is "a.log has nothing after the move" "" "$(grep 'id=mv1' "$T/a.log")"
static INFO
ok "SIGHUP: access log off" hup
ok "logged" wait_log 'access log off' 2
get "$P_WEB" "/bench?id=off1" >/dev/null
sleep 0.5
is "no line after it is off" "" "$(cat "$T/a.log" "$T/b.log" | grep 'id=off1')"

# ---- errors change nothing
"$PYTHON" -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $P_BUSY)); s.listen(1)
open('$T/busy.ready', 'w').close()
time.sleep(20)" &
BUSY=$!
PIDS+=($BUSY)
for _ in $(seq 1 100); do [ -e "$T/busy.ready" ] && break; sleep 0.05; done
static INFO "$EXTRA
  busy:
    address: \"127.0.0.1:$P_BUSY\""
ok "SIGHUP: an address in use" hup
like "the error names the file, the key path and the reason" \
  "static.yaml: entryPoints.busy.address: cannot listen on 127.0.0.1:$P_BUSY: Address already in use \\(static configuration not changed\\)" \
  "$(grep 'entryPoints.busy' "$T/relais.log")"
is "web still serves" "200 1 w1" "$(get "$P_WEB" /bench)"
curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$P_EXTRA/bench"
is "extra, in the same file, was not added either (curl exit 7)" "7" "$?"
kill "$BUSY" 2>/dev/null

static INFO "  bad:
    address: \"not an address\""
ok "SIGHUP: a broken entry point" hup
like "the error names the file and the key path" \
  'SIGHUP: .*static.yaml: entryPoints.bad.address: .*\(static configuration not changed\)' \
  "$(grep 'entryPoints.bad' "$T/relais.log")"
printf 'entryPoints: [\n' >"$T/static.yaml"
ok "SIGHUP: a file that does not parse" hup
like "the error names the file and the place" 'SIGHUP: .*static.yaml:[0-9]+:[0-9]+: ' \
  "$(grep 'SIGHUP: .*static.yaml:[0-9]' "$T/relais.log")"
is "web still serves" "200 1 w1" "$(get "$P_WEB" /bench)"

# ---- a key read at start only
static INFO "" "" 3
ok "SIGHUP: workers changed" hup
ok "WARN: workers needs a restart" wait_log "WRN .*workers: changed in $T/static.yaml, needs a restart" 2
is "ping still answers on traefik" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_TR/ping")"
is "web still serves" "200 1 w1" "$(get "$P_WEB" /bench)"

stop_relais_clean

# ---- cluster mode: the etcd key P/static is the overlay (sl_apply)
. "$RELAIS_SRCDIR/tests/servers/etcd.sh"
command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
  { echo "Bail out! etcd not installed (CI installs it: see tests/run.sh)"; exit 1; }
trap 'etcd_stop >/dev/null 2>&1; t_cleanup' EXIT
etcd_start "$T/etcd" >"$T/etcd-start.log" 2>&1 ||
  { echo "Bail out! etcd does not start"; cat "$T/etcd-start.log"; exit 1; }
export ETCDCTL_ENDPOINTS=$ETCD_ENDPOINTS
C_WEB=$(free_port)
C_EXTRA=$(free_port)
cat >"$T/cluster.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$C_WEB"
cluster:
  role: proxy
  nodeName: p1
  prefix: sl/t
  leaseTTL: 2s
  etcd:
    timeout: 1s
    endpoints: ["$(echo "$ETCD_ENDPOINTS" | sed 's/,/", "/g')"]
log:
  level: INFO
workers: 2
EOF
cat >"$T/apply.json" <<EOF
{"http": {"routers": {"r": {"rule": "PathPrefix(\`/\`)", "entryPoints": ["web", "extra"],
  "service": "s"}}, "services": {"s": {"loadBalancer": {"servers":
  [{"url": "http://127.0.0.1:$W2"}]}}}}}
EOF
etcdctl put sl/t/apply/t "$(cat "$T/apply.json")" >/dev/null
start_relais "$T/cluster.yaml" "$C_WEB" || { echo "Bail out! the cluster node did not start"; exit 1; }
for _ in $(seq 1 100); do [ "$(get "$C_WEB" /bench)" = "200 1 w2" ] && break; sleep 0.05; done
is "cluster node: web serves the router of P/apply" "200 1 w2" "$(get "$C_WEB" /bench)"
etcdctl put sl/t/static "{\"entryPoints\": {\"extra\": {\"address\": \"127.0.0.1:$C_EXTRA\"}}}" >/dev/null
ok "P/static: applied" \
  wait_log 'static configuration applied from etcd key sl/t/static: entry points added: extra' 5
is "extra serves the router" "200 1 w2" "$(get "$C_EXTRA" /bench)"
etcdctl put sl/t/static "{\"entryPoints\": {\"extra\": {\"address\": \"127.0.0.1:$C_EXTRA\"}}, \"providers\": {}}" >/dev/null
ok "P/static with another key: refused, the message names the etcd key" \
  wait_log 'etcd key sl/t/static: providers: only log, accessLog and entryPoints can change at run time \(the running static options are kept\)' 5
is "extra still serves" "200 1 w2" "$(get "$C_EXTRA" /bench)"
etcdctl del sl/t/static >/dev/null
ok "P/static deleted: back to the file" \
  wait_log 'static configuration applied from etcd key sl/t/static: entry points removed: extra' 5
is "extra is gone (curl exit 7)" "7" "$(refused "$C_EXTRA")"
is "web still serves" "200 1 w2" "$(get "$C_WEB" /bench)"
stop_relais_clean
t_done
