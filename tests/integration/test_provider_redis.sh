#!/usr/bin/env bash
# The redis provider against a real redis-server (tests/servers/redis.sh):
# routes from Traefik's KV layout, failover past a dead endpoint, changes
# followed through keyspace notifications, a deleted router gone, no failed
# request for a stable route while another route changes, redis going away
# keeps the last configuration serving (logged once), updates resume after
# a restart, polling mode when notifications are off, bad options refused
# by --check.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/redis.sh"

trap 'redis_stop; t_cleanup' EXIT

plugin_dir_own   # $T/plugins: symlinks to the staged plugins

start_whoami w1; P1=$WHOAMI_PORT
start_whoami w2; P2=$WHOAMI_PORT
RP=$(free_port)
DEAD=$(free_port)

code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:${2:-$RP}/"; }
# name HOST [PORT]: the name of the whoami that answered, else what came
# instead ("no whoami: HTTP 404", "no whoami: no response")
name() {
  curl -s --max-time 10 -D- -o /dev/null -H "Host: $1" "http://127.0.0.1:${2:-$RP}/" | tr -d '\r' |
    awk 'NR == 1 { st = $2 } /^X-Whoami-Name: / { n = substr($0, 16) }
         END { print n != "" ? n : "no whoami: " (st != "" ? "HTTP " st : "no response") }'
}
# until_eq EXPECTED CMD...: waits (5 s at most) until CMD prints EXPECTED
until_eq() {
  local want=$1 i; shift
  for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}
# within_10s EXPECTED CMD...: the same, ten seconds at most
within_10s() {
  local want=$1 i; shift
  for i in $(seq 1 200); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}
# within_1s EXPECTED CMD...: the same, one second at most
within_1s() {
  local want=$1 i; shift
  for i in $(seq 1 20); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}
# route NAME HOST PORT: router NAME for HOST to a service on the whoami at PORT
route() {
  redis_cli ${RDB:+-n $RDB} MSET "traefik/http/routers/$1/rule" "Host(\`$2\`)" \
    "traefik/http/routers/$1/service" "s_$1" \
    "traefik/http/services/s_$1/loadbalancer/servers/0/url" "http://127.0.0.1:$3" >/dev/null
}
unroute() {
  redis_cli ${RDB:+-n $RDB} DEL "traefik/http/routers/$1/rule" "traefik/http/routers/$1/service" \
    "traefik/http/services/s_$1/loadbalancer/servers/0/url" >/dev/null
}

redis_start "$T/redis" || { echo "Bail out! redis-server does not start"; exit 1; }
route r a.test "$P1"
route stable stable.test "$P2"
redis_cli SET other/http/routers/x/rule 'Host(`x.test`)' >/dev/null

cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  redis:
    endpoints: ["127.0.0.1:$DEAD", "$REDIS_ADDR"]
    rootKey: traefik
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$RP"
ok "route from redis served (after failing over a dead endpoint)" until_eq w1 name a.test
is "stable route served" "w2" "$(name stable.test)"
is "keys outside rootKey ignored" "404" "$(code x.test)"
ok "keyspace mode logged" grep -q "provider redis.*$REDIS_ADDR: watching keyspace notifications" "$T/relais.log"

redis_cli SET traefik/http/services/s_r/loadbalancer/servers/0/url "http://127.0.0.1:$P2" >/dev/null
ok "a changed key is followed within 1 s" within_1s w2 name a.test
redis_cli DEL traefik/http/routers/r/rule traefik/http/routers/r/service >/dev/null
ok "a deleted router answers 404" within_1s 404 code a.test

# bounded load on the stable route while another route comes and goes
(
  for i in $(seq 1 10); do
    route r a.test "$P1"; sleep 0.1
    redis_cli SET traefik/http/services/s_r/loadbalancer/servers/0/url "http://127.0.0.1:$P2" >/dev/null; sleep 0.1
    unroute r; sleep 0.1
  done
) &
CHURN=$!
PIDS+=($CHURN)
load=$(python3 - "$RP" <<'PY'
import http.client, sys, time
port = int(sys.argv[1]); ok = bad = 0; end = time.time() + 3
while time.time() < end and ok + bad < 3000:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/", headers={"Host": "stable.test"})
        r = c.getresponse(); r.read()
        if r.status == 200: ok += 1
        else: bad += 1
        c.close()
    except Exception:
        bad += 1
print(ok, bad)
PY
)
wait "$CHURN"
like "load on the stable route: requests served" '^[1-9][0-9]* ' "$load"
like "load on the stable route: zero failures" ' 0$' "$load"
route r a.test "$P1"
# The churn passes through a.test -> w1 too, and relais may lag behind it
# (under ASan each configuration takes 0.2-0.8 s to build, the churn
# changes every 0.1 s): a.test answering w1 may be a state the churn left,
# and redis killed before relais read the last one leaves a.test on w2 or
# 404 (seen).  So a fence router is written after the last change: a read
# cycle that sees it also saw every earlier write (SCAN returns the keys
# present throughout, MGET follows), so once fence.test is served relais
# holds the final data set, the one that must survive redis going away.
route fence fence.test "$P1"
ok "relais has read redis since the churn ended (fence route served)" within_10s w1 name fence.test
is "route back after the churn" w1 "$(name a.test)"

# redis goes away: logged once, the last configuration keeps serving
redis_kill
ok "the failure is logged" wait_log "provider redis.*$REDIS_ADDR: .*last configuration keeps serving"
sleep 1.2
is "the failure is logged once" "1" "$(grep -c 'provider redis.*last configuration keeps serving' "$T/relais.log")"
is "last configuration keeps serving" "w1" "$(name a.test)"
is "stable route keeps serving" "w2" "$(name stable.test)"
is "... and the fence route" "w1" "$(name fence.test)"

# back (empty data set): keys set again, updates resume
redis_restart
route stable stable.test "$P2"
route r b.test "$P2"
ok "updates resume after a restart" until_eq w2 name b.test
is "the old route is gone" "404" "$(code a.test)"
ok "recovery logged" grep -q "provider redis.*reachable again" "$T/relais.log"
redis_cli SET traefik/http/services/s_r/loadbalancer/servers/0/url "http://127.0.0.1:$P1" >/dev/null
ok "notifications followed again after reconnect" within_1s w1 name b.test

# SIGHUP re-reads: with notifications turned off, only the reload sees a change
redis_notify "" || echo "# CONFIG SET failed"
redis_cli SET traefik/http/services/s_r/loadbalancer/servers/0/url "http://127.0.0.1:$P2" >/dev/null
sleep 0.3
is "without notifications the change is not seen" "w1" "$(name b.test)"
kill -HUP "$RELAIS_PID"
ok "SIGHUP re-reads redis" within_1s w2 name b.test

kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
is "relais exits 0" "0" "$?"
redis_stop

# polling mode: notifications off; with a password and db 2
REDIS_REQUIREPASS=s3cret redis_start "$T/redis2" "" || { echo "Bail out! redis-server does not start"; exit 1; }
RDB=2
route p p.test "$P1"
RP2=$(free_port)
cat >"$T/relais2.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP2"
providers:
  providersThrottleDuration: 0s
  redis:
    endpoints: ["$REDIS_ADDR"]
    pollInterval: 300ms
    password: s3cret
    db: 2
log:
  level: DEBUG
EOF
"$RELAIS" --config "$T/relais2.yaml" --plugin-dir "$PLUGIN_DIR" >"$T/relais2.log" 2>&1 &
R2=$!
PIDS+=($R2)
wait_port "$RP2"
ok "polling mode: route served" until_eq w1 name p.test "$RP2"
ok "polling mode logged" grep -q "provider redis.*notifications are off: polling every 300 ms" "$T/relais2.log"
redis_cli -n 2 SET traefik/http/services/s_p/loadbalancer/servers/0/url "http://127.0.0.1:$P2" >/dev/null
ok "polling mode: a change is followed" within_1s w2 name p.test "$RP2"
unroute p
ok "polling mode: a removed route answers 404" within_1s 404 code p.test "$RP2"
kill -TERM "$R2"; wait "$R2"
is "second relais exits 0" "0" "$?"

# options are validated
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  redis:
    endpoints: ["nohostport", "127.0.0.1:99999"]
    db: -1
    pollInterval: soon
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad redis provider options" "1" "$rc"
like "bad endpoints named" 'providers\.redis\.endpoints' "$out"
like "bad db named" 'providers\.redis\.db' "$out"
like "bad pollInterval named" 'providers\.redis\.pollInterval' "$out"
cat >"$T/bad2.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  redis:
    endpoints: "127.0.0.1:6379"
    rootKey: ""
EOF
out=$("$RELAIS" --config "$T/bad2.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses a non-list endpoints" "1" "$rc"
like "non-list endpoints named" 'providers\.redis\.endpoints: expected a list' "$out"
like "empty rootKey named" 'providers\.redis\.rootKey' "$out"
t_done
