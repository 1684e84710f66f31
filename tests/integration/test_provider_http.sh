#!/usr/bin/env bash
# The http provider against a real HTTP server (python3 -m http.server):
# routes from the endpoint, changes followed, the endpoint going away keeps
# the last configuration serving, updates resume when it is back; a broken
# document keeps the previous one; no failed request on a stable route
# under a bounded load while another route is added, changed and removed
# at the endpoint; bad options are refused by --check.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
start_whoami w2; P2=$WHOAMI_PORT
WWW=$T/www
mkdir -p "$WWW"
HP=$(free_port)
RP=$(free_port)

# start_www: serves $WWW on 127.0.0.1:$HP (a real HTTP server)
start_www() {
  python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$HP" >"$T/www.log" 2>&1 &
  WWW_PID=$!
  PIDS+=($WWW_PID)
  wait_port "$HP"
}
# publish HOST PORT: the endpoint now routes HOST to the whoami on PORT
publish() {
  cat >"$WWW/.cfg.tmp" <<EOF
{"http": {"routers": {"r": {"rule": "Host(\`$1\`)", "service": "s"}},
          "services": {"s": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:$2"}]}}}}}
EOF
  mv "$WWW/.cfg.tmp" "$WWW/config.json"
}
# publish_two STABLE-PORT [HOST PORT]: the endpoint routes stable.test to
# the whoami on STABLE-PORT and, when given, HOST to the whoami on PORT
publish_two() {
  local other=""
  [ $# -ge 3 ] && other=", \"o\": {\"rule\": \"Host(\`$2\`)\", \"service\": \"so\"}"
  cat >"$WWW/.cfg.tmp" <<EOF
{"http": {"routers": {"st": {"rule": "Host(\`stable.test\`)", "service": "ss"}$other},
          "services": {"ss": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:$1"}]}},
                       "so": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:${3:-$1}"}]}}}}}
EOF
  mv "$WWW/.cfg.tmp" "$WWW/config.json"
}
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
name() { curl -s -D- -o /dev/null -H "Host: $1" "http://127.0.0.1:$RP/" | tr -d '\r' | sed -n 's/^X-Whoami-Name: //p'; }
# until_eq EXPECTED CMD...: waits (5 s at most) until CMD prints EXPECTED
until_eq() {
  local want=$1 i; shift
  for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

publish one.test "$P1"
start_www
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  http:
    endpoint: "http://127.0.0.1:$HP/config.json"
    pollInterval: 200ms
    pollTimeout: 1s
    headers:
      X-Relais-Test: yes-it-is
log:
  level: DEBUG
EOF
start_relais "$T/relais.yaml" "$RP"
ok "first configuration from the endpoint applied" wait_log "configuration 2 applied"
is "route from the endpoint" "w1" "$(name one.test)"
ok "the endpoint is polled" grep -q "GET /config.json" "$T/www.log"

publish two.test "$P2"
ok "a change at the endpoint is followed" until_eq w2 name two.test
is "the old route is gone" "404" "$(code one.test)"
n_applied=$(grep -c 'configuration .* applied' "$T/relais.log")
sleep 0.7
is "an unchanged body is not applied again" "$n_applied" "$(grep -c 'configuration .* applied' "$T/relais.log")"

# the endpoint goes away: the last configuration keeps serving
kill "$WWW_PID"; wait "$WWW_PID" 2>/dev/null
ok "the failure is logged" wait_log "provider http.*127.0.0.1:$HP/config.json: .*last configuration keeps serving"
is "last configuration keeps serving" "w2" "$(name two.test)"
publish one.test "$P1"
start_www
ok "updates resume when the endpoint is back" until_eq w1 name one.test

# a broken document: reported, previous configuration kept
printf '{"http": {"routers": ' >"$WWW/.cfg.tmp"; mv "$WWW/.cfg.tmp" "$WWW/config.json"
ok "a broken document is reported with its source" wait_log "127.0.0.1:$HP/config.json:[0-9]+:[0-9]+: .*previous configuration kept"
is "previous configuration still serves" "w1" "$(name one.test)"
publish two.test "$P2"
ok "a fixed document is applied" until_eq w2 name two.test

# bounded load on a stable route (at most 3000 requests and 3 s, paced at
# about one request per ms on one keep-alive connection, reopened when
# relais closes it) while another route is added, changed and removed at
# the endpoint; the load is stopped once the last change has been seen
publish_two "$P1"
ok "the stable route is served" until_eq w1 name stable.test
rm -f "$T/load.stop" "$T/load.ready"
python3 - "$RP" "$T/load.stop" "$T/load.ready" >"$T/load.out" 2>"$T/load.err" <<'PY' &
import http.client, os, sys, time
port, stop, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ok = bad = 0
t0 = time.monotonic(); end = t0 + 3; conn = None
open(ready, "w").close()
while time.monotonic() < end and ok + bad < 3000 and not os.path.exists(stop):
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/", headers={"Host": "stable.test"})
        r = conn.getresponse(); r.read()
        if r.status == 200 and r.getheader("X-Whoami-Name") == "w1":
            ok += 1
        else:
            bad += 1
            if bad <= 5: print("answer %d from %s" % (r.status, r.getheader("X-Whoami-Name")), file=sys.stderr)
        if r.will_close:
            conn.close(); conn = None
    except Exception as e:
        bad += 1
        if bad <= 5: print("error %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if conn is not None: conn.close()
        conn = None
    time.sleep(0.001)
print(ok, bad, "stopped" if os.path.exists(stop) else "bounded", "%.1f" % (time.monotonic() - t0))
PY
LOADPID=$!
PIDS+=($LOADPID)
for _ in $(seq 1 100); do [ -e "$T/load.ready" ] && break; sleep 0.02; done
publish_two "$P1" other.test "$P1"
ok "under load: a route added at the endpoint is served" until_eq w1 name other.test
publish_two "$P1" other.test "$P2"
ok "under load: a route changed at the endpoint is followed" until_eq w2 name other.test
publish_two "$P1"
ok "under load: a route removed at the endpoint answers 404" until_eq 404 code other.test
touch "$T/load.stop"
wait "$LOADPID"
read -r nok nbad how secs <"$T/load.out"
sed 's/^/# /' "$T/load.err"
echo "# load: ${nok:-?} ok, ${nbad:-?} failed, ${how:-?} after ${secs:-?} s"
ok "load on the stable route: requests served (${nok:-0})" test "${nok:-0}" -gt 50
is "load on the stable route: zero failed requests" "0" "${nbad:-none}"
is "the load lasted through the three changes" "stopped" "${how:-}"

# options are validated
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  http:
    pollInterval: soon
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad http provider options" "1" "$rc"
like "missing endpoint named" 'providers.http.endpoint: missing' "$out"
like "bad duration named" 'providers.http.pollInterval: expected a duration' "$out"
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
is "relais exits 0" "0" "$?"
t_done
