#!/usr/bin/env bash
# The etcd provider against a real etcd 3.4 (tests/servers/etcd.sh): routes
# from keys under traefik/, changes and deletes followed (watch), no failed
# request on a stable route while another one is added/changed/removed,
# etcd killed → failure logged once and the last configuration keeps
# serving, restart → updates resume (changes made right after the restart
# are not missed), a 3-member cluster with two endpoints survives the loss
# of the member in use, bad options refused by --check.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/etcd.sh"

if ! command -v etcd >/dev/null || ! command -v curl >/dev/null; then
  echo "Bail out! etcd or curl not installed (CI installs it: see tests/run.sh)"
  exit 1
fi
[ -f "$RELAIS_PLUGIN_DIR/etcd.so" ] || { echo "Bail out! etcd.so not built"; exit 1; }
trap 'etcd_stop >/dev/null 2>&1; t_cleanup' EXIT

plugin_dir_own   # $T/plugins: symlinks to the staged plugins

start_whoami w1; P1=$WHOAMI_PORT
start_whoami w2; P2=$WHOAMI_PORT
RP=$(free_port)

b64() { printf %s "$1" | base64 -w0; }
# put KEY VALUE / del KEY on endpoint $EP (default: member 1)
put() {
  curl -s -f --max-time 3 -X POST "${EP:-$ETCD_ENDPOINT}/v3/kv/put" \
    -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
del() {
  curl -s -f --max-time 3 -X POST "${EP:-$ETCD_ENDPOINT}/v3/kv/deleterange" \
    -d "{\"key\":\"$(b64 "$1")\"}" >/dev/null
}
# route NAME HOST SERVICE: router NAME for Host(HOST) → SERVICE
route() {
  put "traefik/http/routers/$1/rule" "Host(\`$2\`)" && put "traefik/http/routers/$1/service" "$3"
}
# service NAME PORT: service NAME → the whoami on PORT
service() { put "traefik/http/services/$1/loadbalancer/servers/0/url" "http://127.0.0.1:$2"; }
code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
name() { curl -s -D- -o /dev/null --max-time 2 -H "Host: $1" "http://127.0.0.1:$RP/" | tr -d '\r' | sed -n 's/^X-Whoami-Name: //p'; }
# until_eq SECONDS EXPECTED CMD...: waits until CMD prints EXPECTED
until_eq() {
  local n=$(( $1 * 20 )) want=$2 i; shift 2
  for ((i = 0; i < n; i++)); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}
# write_config FILE ENDPOINTS-YAML [USERNAME PASSWORD]
write_config() {
  cat >"$1" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  etcd:
    endpoints: [$2]
    rootKey: traefik
${3:+    username: $3}
${4:+    password: $4}
log:
  level: DEBUG
workers: 2
EOF
}
stop_relais() { kill -TERM "$RELAIS_PID" 2>/dev/null; wait "$RELAIS_PID" 2>/dev/null; }

# ---- one member ---------------------------------------------------------
etcd_start "$T/etcd1" >/dev/null || { echo "Bail out! etcd does not start"; exit 1; }
EP1=${ETCD_ENDPOINT#http://}
service s1 "$P1"; service s2 "$P2"
route r one.test s1
write_config "$T/relais.yaml" "\"$EP1\""
start_relais "$T/relais.yaml" "$RP"
ok "keys listed at start" wait_log "provider etcd.*keys under traefik/ at revision"
ok "route from etcd served" until_eq 3 w1 name one.test

put traefik/http/routers/r/service s2
ok "a changed key is followed within 1 s" until_eq 1 w2 name one.test
route r2 two.test s1
ok "a new router appears within 1 s" until_eq 1 w1 name two.test
del traefik/http/routers/r2/rule; del traefik/http/routers/r2/service
ok "a deleted router gives 404 within 1 s" until_eq 1 404 code two.test

# bounded load on one.test while another route is added/changed/removed
(
  fails=0
  end=$((SECONDS + 4))
  for ((i = 0; i < 400 && SECONDS < end; i++)); do
    [ "$(code one.test)" = 200 ] || fails=$((fails + 1))
  done
  echo "$i $fails" >"$T/load.out"
) &
LOADPID=$!
for i in 1 2 3 4 5; do
  route r3 three.test s1; sleep 0.1
  put traefik/http/routers/r3/service s2; sleep 0.1
  del traefik/http/routers/r3/rule; del traefik/http/routers/r3/service; sleep 0.1
done
wait "$LOADPID"
read -r nreq nfail <"$T/load.out"
ok "load ran ($nreq requests)" test "$nreq" -gt 20
is "no failed request on the stable route during changes" 0 "$nfail"

# etcd killed: logged once, last configuration serving
etcd_member_kill 1
ok "etcd going away is logged" wait_log "provider etcd.*$EP1.*last configuration keeps serving" 3
sleep 1.5
is "the failure is logged once per outage" 1 "$(grep -c "provider etcd.*last configuration keeps serving" "$T/relais.log")"
is "last configuration keeps serving" w2 "$(name one.test)"
# restart, then change at once: the change must be seen (watch resumes)
etcd_member_restart 1 >/dev/null
put traefik/http/routers/r/service s1
route r4 four.test s2
ok "a change right after the restart is seen" until_eq 7 w1 name one.test
ok "a router added right after the restart is seen" until_eq 2 w2 name four.test
ok "reachable again is logged" wait_log "provider etcd.*reachable again" 1
# a change made while relais' watch is not connected (bigger backoff):
# kill, wait for a few retries, restart, change at once
etcd_member_kill 1
sleep 1
etcd_member_restart 1 >/dev/null
del traefik/http/routers/r4/rule; del traefik/http/routers/r4/service
ok "a delete right after the second restart is seen" until_eq 7 404 code four.test
# SIGHUP re-lists
kill -HUP "$RELAIS_PID"
ok "SIGHUP lists again" until_eq 3 2 grep -c "keys under traefik/ at revision" "$T/relais.log"
is "still serving after SIGHUP" w1 "$(name one.test)"
# compaction while the watch is down: the revision to resume from is gone,
# relais must list again.  Wait for 5 refused retries (the next one comes
# 3.2 s later), then restart, change and compact before it.
refused() { grep -c "provider etcd.*$EP1: .*refused" "$T/relais.log"; }
n0=$(refused)
etcd_member_kill 1
for i in $(seq 1 100); do [ "$(refused)" -ge $((n0 + 5)) ] && break; sleep 0.05; done
etcd_member_restart 1 >/dev/null
put traefik/http/routers/r/service s2
put not-traefik/other x   # one revision more: the compaction covers the change
rev=$(curl -s -X POST "$ETCD_ENDPOINT/v3/kv/range" -d "{\"key\":\"$(b64 x)\"}" | sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')
curl -s -f -X POST "$ETCD_ENDPOINT/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
ok "a compacted revision makes relais list again" wait_log "provider etcd.*was compacted.*listing again" 8
ok "the change made before the compaction is seen" until_eq 2 w2 name one.test
stop_relais
etcd_stop >/dev/null

# ---- three members, two endpoints -------------------------------------
mv "$T/relais.log" "$T/relais-1member.log"
etcd_cluster_start "$T/etcd3" 3 >/dev/null || { echo "# cluster did not start"; }
read -r C1 C2 C3 <<<"$ETCD_CLIENT_PORTS"
service s1 "$P1"; service s2 "$P2"
route r one.test s1
write_config "$T/relais3.yaml" "\"127.0.0.1:$C1\", \"127.0.0.1:$C2\""
start_relais "$T/relais3.yaml" "$RP"
ok "cluster: route served" until_eq 3 w1 name one.test
etcd_member_kill 1
EP=http://127.0.0.1:$C3
# the surviving pair needs a moment to elect a leader: retry the put
for i in $(seq 1 30); do put traefik/http/routers/r/service s2 && break; sleep 0.2; done
ok "cluster: updates arrive via the other endpoint" until_eq 7 w2 name one.test
route r5 five.test s1
ok "cluster: later updates too" until_eq 2 w1 name five.test
# the member in use hangs (SIGSTOP): the liveness check moves the watch on
etcd_member_restart 1 >/dev/null   # keep a quorum without member 2
read -r _ PID2 _ <<<"$ETCD_PIDS"
kill -STOP "$PID2"
for i in $(seq 1 20); do put traefik/http/routers/r5/service s2 && break; sleep 0.2; done
ok "cluster: a hung member is left for the other endpoint" until_eq 9 w2 name five.test
ok "cluster: the hang is logged" wait_log "provider etcd.*127.0.0.1:$C2: liveness check" 1
kill -CONT "$PID2"
unset EP
stop_relais
etcd_stop >/dev/null

# ---- authentication (username/password → token) ---------------------
etcd_start "$T/etcda" >/dev/null
ctl() { etcdctl --endpoints="$ETCD_ENDPOINT" --dial-timeout=2s "$@" >/dev/null; }
ctl user add root:rootpw && ctl user grant-role root root && ctl auth enable
ctl --user root:rootpw put traefik/http/services/s1/loadbalancer/servers/0/url "http://127.0.0.1:$P1"
ctl --user root:rootpw put traefik/http/routers/r/rule 'Host(`auth.test`)'
ctl --user root:rootpw put traefik/http/routers/r/service s1
mv "$T/relais.log" "$T/relais-cluster.log"
write_config "$T/relaisa.yaml" "\"${ETCD_ENDPOINT#http://}\"" root rootpw
start_relais "$T/relaisa.yaml" "$RP"
ok "auth: route from an etcd with authentication" until_eq 3 w1 name auth.test
ctl --user root:rootpw put traefik/http/services/s1/loadbalancer/servers/0/url "http://127.0.0.1:$P2"
ok "auth: watched changes arrive" until_eq 2 w2 name auth.test
stop_relais
# a wrong password: logged, nothing published
mv "$T/relais.log" "$T/relais-auth.log"
sed -i 's/password: rootpw/password: wrong/' "$T/relaisa.yaml"
start_relais "$T/relaisa.yaml" "$RP"
ok "auth: a wrong password is logged" wait_log "provider etcd.*authentication failed" 3
is "auth: nothing served with a wrong password" 404 "$(code auth.test)"
stop_relais
etcd_stop >/dev/null

# ---- options ------------------------------------------------------------
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  etcd:
    endpoints: ["https://127.0.0.1:2379/v3", "a/b"]
    rootKey: ""
    tls:
      insecureSkipVerify: true
      cafile: x
    bogus: 1
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad etcd options" 1 "$rc"
like "an https endpoint with a path named" 'providers.etcd.endpoints: "https://127.0.0.1:2379/v3": expected host:port' "$out"
like "bad endpoint named" 'providers.etcd.endpoints: "a/b": expected host:port' "$out"
like "empty rootKey named" 'providers.etcd.rootKey: ' "$out"
like "unknown tls option named" 'providers.etcd.tls.cafile: unknown option' "$out"
like "unknown option named" 'providers.etcd.bogus: unknown option' "$out"
t_done
