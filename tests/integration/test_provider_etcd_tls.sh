#!/usr/bin/env bash
# The etcd provider over TLS, two etcd servers under named providers in one
# relais (tests/servers/etcd.sh, etcd 3.4): "east" over TLS with a CA file
# and username/password, "west" over mutual TLS (inline CA, client cert and
# key).  Routes from both are served under their own names (a router r on
# each), a router of west uses a service of east (s@east); a change on each
# is followed within 1 s; a server whose CA is not trusted is refused
# (logged naming the provider, no route); insecureSkipVerify works; east
# killed → its last configuration keeps serving while west still updates;
# east restarted → its updates resume; --check refuses bad tls blocks
# naming providers.NAME.tls.KEY.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/etcd.sh"

for c in etcd etcdctl curl openssl; do
  command -v "$c" >/dev/null || { echo "Bail out! $c not installed"; exit 1; }
done
[ -f "$RELAIS_PLUGIN_DIR/etcd.so" ] || { echo "Bail out! etcd.so not built"; exit 1; }
trap 'etcd_stop_all >/dev/null 2>&1; t_cleanup' EXIT

# ---- PKI: a CA, a server certificate for IP 127.0.0.1, a client
# certificate (clientAuth); another CA that signed nothing here
K=$T/pki
mkdir -p "$K"
(
  set -e
  pki_ca "$K" ca "relais etcd test CA"
  pki_leaf "$K" server ca IP:127.0.0.1 "" "/CN=127.0.0.1"
  mv "$K/server.key" "$K/server-key.pem"
  pki_leaf "$K" client ca DNS:client extendedKeyUsage=clientAuth "/CN=relais client"
  mv "$K/client.key" "$K/client-key.pem"
  pki_ca "$K" other-ca "some other CA"
) || { echo "Bail out! openssl could not make the test PKI"; cat "$K/pki.log"; exit 1; }

plugin_dir_own
start_whoami w1; P1=$WHOAMI_PORT
start_whoami w2; P2=$WHOAMI_PORT
RP=$(free_port)

# ---- two etcd servers: east (TLS, authentication), west (mutual TLS)
etcd_use east
ETCD_TLS_DIR=$K etcd_start "$T/etcd-east" >/dev/null || { echo "Bail out! TLS etcd does not start"; exit 1; }
EAST=${ETCD_ENDPOINT#https://}
etcd_use west
ETCD_TLS_DIR=$K ETCD_TLS_CLIENT_AUTH=1 etcd_start "$T/etcd-west" >/dev/null ||
  { echo "Bail out! mTLS etcd does not start"; exit 1; }
WEST=${ETCD_ENDPOINT#https://}

# ectl CLUSTER ARGS...: etcdctl on CLUSTER (its TLS files come from
# etcd.sh's ETCDCTL_* exports; east as root once authentication is on)
EAST_USER=()
ectl() {
  local c=$1; shift
  etcd_use "$c"
  if [ "$c" = east ]; then
    etcdctl --endpoints="$ETCD_ENDPOINT" --dial-timeout=2s --command-timeout=3s \
      "${EAST_USER[@]}" "$@" >/dev/null
  else
    etcdctl --endpoints="$ETCD_ENDPOINT" --dial-timeout=2s --command-timeout=3s "$@" >/dev/null
  fi
}
# put CLUSTER KEY VALUE (retried while a restarted member settles: 3 s)
put() {
  local i
  for i in 1 2 3 4 5 6; do ectl "$1" put "$2" "$3" && return 0; sleep 0.5; done
  return 1
}
# route CLUSTER PREFIX NAME HOST SERVICE / service CLUSTER PREFIX NAME PORT
route() {
  put "$1" "$2/http/routers/$3/rule" "Host(\`$4\`)" && put "$1" "$2/http/routers/$3/service" "$5"
}
service() { put "$1" "$2/http/services/$3/loadbalancer/servers/0/url" "http://127.0.0.1:$4"; }

ectl east user add root:rootpw && ectl east user grant-role root root && ectl east auth enable ||
  { echo "Bail out! cannot enable etcd authentication"; exit 1; }
EAST_USER=(--user root:rootpw)
service east traefik s "$P1"
route east traefik r east.test s
service west traefik s "$P2"
route west traefik r west.test s
route west traefik x cross.test s@east
service east untrusted s "$P1"
route east untrusted r untrusted.test s
service east insecure s "$P1"
route east insecure r insecure.test s

INLINE_CA=$(sed 's/^/        /' "$K/ca.pem")
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  east:
    type: etcd
    endpoints: ["$EAST"]
    rootKey: traefik
    username: root
    password: rootpw
    tls:
      ca: "$K/ca.pem"
  west:
    type: etcd
    endpoints: ["https://$WEST"]
    rootKey: traefik
    tls:
      ca: |
$INLINE_CA
      cert: "$K/client.pem"
      key: "$K/client-key.pem"
  untrusted:
    type: etcd
    endpoints: ["$EAST"]
    rootKey: untrusted
    username: root
    password: rootpw
    tls:
      ca: "$K/other-ca.pem"
  insecure:
    type: etcd
    endpoints: ["https://$EAST"]
    rootKey: insecure
    username: root
    password: rootpw
    tls:
      insecureSkipVerify: true
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$RP"

code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
name() { curl -s -D- -o /dev/null --max-time 2 -H "Host: $1" "http://127.0.0.1:$RP/" | tr -d '\r' | sed -n 's/^X-Whoami-Name: //p'; }
# until_eq SECONDS EXPECTED CMD...: waits until CMD prints EXPECTED
until_eq() {
  local n=$(( $1 * 20 )) want=$2 i; shift 2
  for ((i = 0; i < n; i++)); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

ok "east (TLS, CA file, user/password): keys listed" \
  wait_log "\[provider east\] https://$EAST: [0-9]+ keys under traefik/ at revision" 5
ok "west (mutual TLS, inline CA): keys listed" \
  wait_log "\[provider west\] https://$WEST: [0-9]+ keys under traefik/ at revision" 5
ok "router r@east served (its service s@east)" until_eq 3 w1 name east.test
ok "router r@west served (its service s@west)" until_eq 3 w2 name west.test
ok "router x@west uses service s@east" until_eq 3 w1 name cross.test

# a change on each is followed within 1 s
put east traefik/http/services/s/loadbalancer/servers/0/url "http://127.0.0.1:$P2"
ok "east: a changed key is followed within 1 s" until_eq 1 w2 name east.test
ok "east: the router of west using s@east follows too" until_eq 1 w2 name cross.test
route west traefik r2 west2.test s
ok "west: a new router appears within 1 s" until_eq 1 w2 name west2.test
put west traefik/http/routers/x/service s
ok "west: a changed reference is followed within 1 s" until_eq 1 w2 name cross.test
put west traefik/http/services/s/loadbalancer/servers/0/url "http://127.0.0.1:$P1"
ok "west: a changed service is followed within 1 s" until_eq 1 w1 name west.test

# an untrusted CA: refused, logged naming the provider; insecureSkipVerify
ok "untrusted CA: refused, logged under provider untrusted" \
  wait_log "\[provider untrusted\] https://$EAST: .*certificate verify failed" 3
is "untrusted CA: logged once per outage" 1 \
  "$(grep -c "ERR \[provider untrusted\].*certificate verify failed" "$T/relais.log")"
is "untrusted CA: no route" 404 "$(code untrusted.test)"
is "untrusted CA: never listed" 0 "$(grep -c "provider untrusted.*keys under" "$T/relais.log")"
ok "insecureSkipVerify: route served" until_eq 3 w1 name insecure.test

# east killed: its last configuration keeps serving, west still updates
etcd_use east
etcd_member_kill 1
ok "east going away is logged (provider east)" \
  wait_log "\[provider east\] https://$EAST: .*last configuration keeps serving" 5
is "east: last configuration keeps serving" w2 "$(name east.test)"
put west traefik/http/routers/r3/rule 'Host(`west3.test`)'
put west traefik/http/routers/r3/service s
ok "west updates while east is down (within 1 s)" until_eq 1 w1 name west3.test
is "east: still serving after west's update" w2 "$(name east.test)"
is "west: the failure of east is not logged under west" 0 \
  "$(grep -c "provider west.*last configuration keeps serving" "$T/relais.log")"

# east restarted: updates resume
etcd_use east
etcd_member_restart 1 >/dev/null || echo "# east did not restart"
put east traefik/http/services/s/loadbalancer/servers/0/url "http://127.0.0.1:$P1"
route east traefik r4 east4.test s
ok "east: a change after the restart is seen" until_eq 7 w1 name east.test
ok "east: a router added after the restart is seen" until_eq 2 w1 name east4.test
ok "east: reachable again is logged" wait_log "\[provider east\] https://$EAST: reachable again" 2
put west traefik/http/routers/r3/service s@east
ok "west still follows after east's restart (within 1 s)" until_eq 1 w1 name west3.test
put east traefik/http/services/s/loadbalancer/servers/0/url "http://127.0.0.1:$P2"
ok "east: later changes within 1 s" until_eq 1 w2 name east4.test
kill -TERM "$RELAIS_PID" 2>/dev/null; wait "$RELAIS_PID" 2>/dev/null

# ---- --check refuses bad tls blocks, naming the key path
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  east:
    type: etcd
    endpoints: ["$EAST"]
    tls:
      cert: "$K/client.pem"
      insecureSkipVerfy: true
  west:
    type: etcd
    endpoints: ["$WEST"]
    tls: true
EOF
out=$("$RELAIS" --check --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1); rc=$?
is "--check refuses bad tls blocks" 1 "$rc"
like "an unknown tls key is named" "providers\.east\.tls\.insecureSkipVerfy: unknown option" "$out"
like "cert without key is named" "providers\.east\.tls\.key: cert and key go together" "$out"
like "a tls that is no map is named" "providers\.west\.tls: expected a map" "$out"
# a good one passes
out=$("$RELAIS" --check --config "$T/relais.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1); rc=$?
is "--check accepts the named TLS providers" 0 "$rc"
t_done
