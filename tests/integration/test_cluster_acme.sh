#!/usr/bin/env bash
# ACME in cluster mode (issue 10): a real three-member etcd, a real Pebble, two
# controllers (file provider on one dynamic file with TLS routers) and two
# proxies, all declaring the same certificatesResolvers.  Pebble validates
# http-01 on proxy p1's "web" entry point and tls-alpn-01 on proxy p2's
# "websecure" one, so each challenge is answered by a node that did not
# order (the challenges travel through P/acme/challenges/).  Checks: the
# leader takes P/acme/lock, exactly one order per domain set reaches
# Pebble, both proxies serve the same certificate (verified against
# Pebble's root), P/acme/<resolver> holds it in acme.json's layout, the
# challenge keys are gone afterwards, the controller that does not lead
# orders nothing; kill -9 of the leader → the other controller takes the
# lock, re-orders nothing, and orders a new router's certificate with the
# same account; a certificate deleted from etcd is ordered again by the
# leader and served by every node; a lock forged by someone else stops the
# leader's orders until it is deleted; a restarted proxy serves from etcd
# at once; clean stops.  leaseTTL 5s: a node stalled for a few seconds on a
# loaded machine keeps its lease (a lost lock would rightly re-order).
# Acknowledgements (P/acme/acks/<kind>/<id>/<node>): every live node
# acknowledges each challenge it installed, the orderer tells Pebble only
# once all have (logged), the keys are gone with the challenges; a proxy
# stopped by SIGSTOP (its lease, 30 s, outlives the 10 s cap) holds the
# order for 10 s, then a WARN names it and Pebble validates anyway (on p1);
# resumed, it serves the certificate too; a proxy whose lease expires
# (SIGSTOP for longer than its 5 s TTL) stops counting, without the cap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
cl_need etcd etcdctl pebble curl python3 openssl

for n in c1 c2 p1 p2; do PORT[$n]=$(free_port); WS[$n]=$(free_port); done
# Pebble's validation reaches proxies only
export PEBBLE_HTTP01_PORT=${PORT[p1]} PEBBLE_TLSALPN01_PORT=${WS[p2]}
. "$RELAIS_SRCDIR/tests/servers/pebble.sh"
CL_TEARDOWN=(pebble_stop)
pebble_start "$T/pebble" >"$T/pebble-start.log" 2>&1 \
  || { echo "Bail out! pebble does not start"; cat "$T/pebble-start.log"; exit 1; }
cl_etcd_start
CL_PREFIX=ra CL_TTL=5s
curl -sf --max-time 10 --cacert "$PEBBLE_CA_CERT" "$PEBBLE_MGMT_URL/roots/0" >"$T/root.pem"
ok "Pebble's issuing root fetched" grep -q "BEGIN CERTIFICATE" "$T/root.pem"

plugin_dir_own
start_whoami w1; W1=$WHOAMI_PORT

DYN=$T/dyn.yaml CL_DYN=$T/dyn.yaml
# dyn [EXTRA-ROUTER-YAML]: the controllers' dynamic file
# dyn [NAME:RESOLVER ...]: writes the dynamic file: routers ab and c, plus
# one router NAME (Host NAME.relais.test, certResolver RESOLVER) per
# argument
dyn() {
  local extra="" a
  for a in "$@"; do
    extra+="    ${a%%:*}:
      rule: Host(\`${a%%:*}.relais.test\`)
      entryPoints: [websecure]
      service: s
      tls: {certResolver: ${a#*:}}
"
  done
  cat >"$DYN.tmp" <<EOF
http:
  routers:
    ab:
      rule: Host(\`a.relais.test\`) || Host(\`b.relais.test\`)
      entryPoints: [websecure]
      service: s
      tls: {certResolver: le}
    c:
      rule: Host(\`c.relais.test\`)
      entryPoints: [websecure]
      service: s
      tls: {certResolver: alpn}
${extra}  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$W1"}]
EOF
  mv "$DYN.tmp" "$DYN"
}
dyn

# cl_node_extra NAME ROLE: every node declares the same two resolvers
# (node_cfg, cluster_lib.sh)
cl_node_extra() {
  cat <<EOF
certificatesResolvers:
  le:
    acme:
      email: ops@relais.test
      caServer: "$PEBBLE_DIRECTORY_URL"
      caCertificates: ["$PEBBLE_CA_CERT"]
      storage: "$T/$1-acme.json"
      keyType: EC256
      httpChallenge: {entryPoint: web}
  alpn:
    acme:
      email: ops@relais.test
      caServer: "$PEBBLE_DIRECTORY_URL"
      caCertificates: ["$PEBBLE_CA_CERT"]
      keyType: EC256
      tlsChallenge: {}
EOF
}
for n in c1 c2; do node_cfg $n controller; done
for n in p1 p2; do node_cfg $n proxy; done

# served NODE NAME: serial of the certificate NODE serves for NAME when it
# verifies against Pebble's root (empty otherwise)
served() {
  local out
  out=$(echo | openssl s_client -connect "127.0.0.1:${WS[$1]}" -servername "$2" \
    -CAfile "$T/root.pem" -verify_return_error -verify_hostname "$2" 2>/dev/null) || return 0
  printf '%s' "$out" | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'
}
# until_nonempty SECONDS CMD...: waits until CMD prints something
until_nonempty() {
  local n=$(( $1 * 10 )) i; shift
  for ((i = 0; i < n; i++)); do [ -n "$("$@")" ] && return 0; sleep 0.1; done
  return 1
}
# orders: how many newOrder requests Pebble accepted so far (its log
# shows every POST, also those it answered badNonce: the nodes retried
# those, and log each retry)
orders() {
  local posts retried
  posts=$(grep -c 'POST /order-plz' "$T/pebble/pebble.log")
  retried=$(cat "$T"/c1.log "$T"/c2.log "$T"/p1.log "$T"/p2.log 2>/dev/null | grep -c 'badNonce from .*/order-plz')
  echo $((posts - retried))
}
# issued: how many certificates Pebble issued so far
issued() { grep -ci 'issued certificate' "$T/pebble/pebble.log"; }

out=$("$RELAIS" --check --config "$T/p1.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1)
is "--check accepts a proxy with certificatesResolvers" 0 $?
like "storage: is ignored in cluster mode (INFO line)" \
  "certificatesResolvers\.le\.acme\.storage is ignored in cluster mode: .* ra/acme/le" "$out"

# the proxies first: Pebble validates on them as soon as c1 orders
start_node p1
start_node p2
start_node c1
for _ in $(seq 1 100); do [ "$(ek ra/leader)" = c1 ] && break; sleep 0.1; done
is "c1 leads" c1 "$(ek ra/leader)"
for _ in $(seq 1 100); do [ "$(ek ra/acme/lock)" = c1 ] && break; sleep 0.1; done
is "the leader holds ra/acme/lock" c1 "$(ek ra/acme/lock)"
start_node c2

ok "http-01 (validated on p1): p1 serves a.relais.test" until_nonempty 90 served p1 a.relais.test
ok "p2 serves a.relais.test" until_nonempty 10 served p2 a.relais.test
SA=$(served p1 a.relais.test)
is "both proxies serve the same certificate" "$SA" "$(served p2 a.relais.test)"
is "it covers b.relais.test (SAN)" "$SA" "$(served p1 b.relais.test)"
ok "tls-alpn-01 (validated on p2): p1 serves c.relais.test" until_nonempty 90 served p1 c.relais.test
SC=$(served p1 c.relais.test)
is "p2 serves the same c.relais.test certificate" "$SC" "$(served p2 c.relais.test)"
ok "the controllers serve them too" sh -c "[ '$(served c2 a.relais.test)' = '$SA' ] && [ '$(served c1 c.relais.test)' = '$SC' ]"
ok "Pebble validated http-01 on p1's entry point (c1 ordered)" \
  grep -q "validate w/ HTTP: http://a.relais.test:${PORT[p1]}/.well-known/acme-challenge/" \
  "$T/pebble/pebble.log"
sleep 2
is "exactly two orders reached Pebble (one per domain set)" 2 "$(orders)"
is "exactly two certificates issued" 2 "$(issued)"
ok "only c1 ordered" sh -c "grep -q 'ordering a certificate' '$T/c1.log' && \
  ! grep -q 'ordering a certificate' '$T/c2.log' '$T/p1.log' '$T/p2.log'"
is "no challenge left under ra/acme/challenges/" "" \
  "$(etcdctl get --keys-only --prefix ra/acme/challenges/ 2>/dev/null)"

# ---- acknowledgements: c1 (the orderer) saw each live node acknowledge
# each challenge, and told Pebble only once all had
# acks_gone: prints "gone" once nothing is left under ra/acme/acks/
acks_gone() { [ -z "$(etcdctl get --keys-only --prefix ra/acme/acks/ 2>/dev/null)" ] && echo gone; }
for n in c1 p1 p2; do
  ok "$n acknowledged the http-01 challenge (c1 saw its ack key)" \
    grep -qE "ra/acme/challenges/http/[^ :]+: acknowledged by $n " "$T/c1.log"
  ok "$n acknowledged the tls-alpn-01 challenge of c.relais.test" \
    grep -qE "ra/acme/challenges/alpn/c\.relais\.test: acknowledged by $n " "$T/c1.log"
done
ok "p1 and p2 logged their acknowledgements (after installing)" sh -c \
  "grep -q 'acknowledging ra/acme/challenges/http/.*installed here' '$T/p1.log' && \
   grep -q 'acknowledging ra/acme/challenges/alpn/c.relais.test .*installed here' '$T/p2.log'"
# line of the first match of ERE $2 in file $1 (0: none)
line_of() { grep -nE "$2" "$1" | head -1 | cut -d: -f1 | grep . || echo 0; }
ALLA=$(line_of "$T/c1.log" "ra/acme/challenges/http/[^ :]+: all [0-9]+ live node\(s\) acknowledged it \(([a-z0-9]+, )*p1(, [a-z0-9]+)*\)")
ANSA=$(line_of "$T/c1.log" "answering http-01 for a\.relais\.test")
ok "c1 logged that all live nodes (p1 among them) acknowledged http-01, before answering Pebble ($ALLA < $ANSA)" \
  test "$ALLA" -gt 0 -a "$ALLA" -lt "$ANSA"
ALLC=$(line_of "$T/c1.log" "ra/acme/challenges/alpn/c\.relais\.test: all [0-9]+ live node\(s\) acknowledged it \(([a-z0-9]+, )*p2(, [a-z0-9]+)*\)")
ANSC=$(line_of "$T/c1.log" "answering tls-alpn-01 for c\.relais\.test")
ok "the same for tls-alpn-01 of c.relais.test (p2 among them; $ALLC < $ANSC)" \
  test "$ALLC" -gt 0 -a "$ALLC" -lt "$ANSC"
ok "no node was waited for until the cap" sh -c "! grep -q 'not acknowledged by' '$T/c1.log'"
ok "no acknowledgement left under ra/acme/acks/" until_nonempty 5 acks_gone

# the etcd value: acme.json's section layout, holding the served certificate
layout() {
  ek "ra/acme/$1" | python3 -c '
import base64, json, subprocess, sys
d = json.load(sys.stdin)
acc = d.get("Account") or {}
out = []
for c in d.get("Certificates") or []:
    pem = base64.b64decode(c["certificate"])
    ser = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                         capture_output=True).stdout.decode().strip().replace("serial=", "")
    key = base64.b64decode(c["key"]).decode()
    out.append("%s[%s]:%s:%s:%s" % (c["domain"]["main"], ",".join(c["domain"].get("sans") or []),
               ser, "PRIVATE KEY" in key, c.get("Store")))
print("%s %s %s" % (bool(acc.get("PrivateKey")), acc.get("Registration", {}).get("uri", "-"),
                    " ".join(sorted(out))))'
}
L=$(layout le)
like "ra/acme/le: account (key, registration) and the certificate in acme.json's layout" \
  "^True https://127\.0\.0\.1:[0-9]+/my-account/[0-9a-z]+ a\.relais\.test\[b\.relais\.test\]:$SA:True:default$" "$L"
ACCT=$(echo "$L" | cut -d' ' -f2)
like "ra/acme/alpn: its own section" "c\.relais\.test\[\]:$SC:True:default$" "$(layout alpn)"
ok "no acme.json written by any node (storage: ignored)" sh -c "! ls '$T'/*-acme.json 2>/dev/null | grep -q ."

# ---- kill -9 the leader: c2 takes the lock, nothing is re-ordered
kill -9 "${PID[c1]}"; { wait "${PID[c1]}"; } 2>/dev/null
for _ in $(seq 1 200); do [ "$(ek ra/acme/lock)" = c2 ] && break; sleep 0.1; done
is "after kill -9 of c1, c2 holds ra/acme/lock" c2 "$(ek ra/acme/lock)"
ok "c2 logged that it orders now" sh -c "for i in \$(seq 1 50); do grep -q 'ra/acme/lock held by this node' '$T/c2.log' && exit 0; sleep 0.1; done; exit 1"
sleep 3
is "nothing re-ordered after the takeover" 2 "$(orders)"
is "nothing issued after the takeover" 2 "$(issued)"
ok "c2 ordered nothing" sh -c "! grep -q 'ordering a certificate' '$T/c2.log'"
is "p1 still serves the same certificate" "$SA" "$(served p1 a.relais.test)"

# a new router: the new leader orders it, with the cluster's account
dyn d:le
ok "a new router's certificate (ordered by c2) is served by p2" until_nonempty 90 served p2 d.relais.test
is "p1 serves the same" "$(served p2 d.relais.test)" "$(served p1 d.relais.test)"
is "one more order" 3 "$(orders)"
is "one more certificate issued" 3 "$(issued)"
ok "c2 ordered it" grep -q 'ordering a certificate for d.relais.test' "$T/c2.log"
L=$(layout le)
is "the same account (one for the cluster)" "$ACCT" "$(echo "$L" | cut -d' ' -f2)"
like "ra/acme/le holds both certificates" "a\.relais\.test\[b\.relais\.test\]:$SA:.* d\.relais\.test\[\]:" "$L"

# ---- a certificate deleted from etcd (an operator's edit): the leader
# orders it again and every node serves the new one
ek ra/acme/le | python3 -c '
import json, sys
d = json.load(sys.stdin)
d["Certificates"] = [c for c in d["Certificates"] if c["domain"]["main"] != "a.relais.test"]
sys.stdout.write(json.dumps(d))' >"$T/le-edited.json"
etcdctl put ra/acme/le <"$T/le-edited.json" >/dev/null
renewed() { local s; s=$(served "$1" a.relais.test); [ -n "$s" ] && [ "$s" != "$SA" ] && echo "$s"; }
ok "c2 noticed the deletion" sh -c "for i in \$(seq 1 50); do grep -q 'certificate for a.relais.test deleted from the shared storage' '$T/c2.log' && exit 0; sleep 0.1; done; exit 1"
ok "p1 serves a new a.relais.test certificate (ordered again by c2)" until_nonempty 90 renewed p1
SA2=$(served p1 a.relais.test)
ok "p2 serves it too" until_nonempty 10 sh -c "[ \"\$(echo | openssl s_client -connect 127.0.0.1:${WS[p2]} -servername a.relais.test 2>/dev/null | openssl x509 -noout -serial | sed 's/serial=//')\" = '$SA2' ] && echo y"
is "one order for it" 4 "$(orders)"
is "one certificate issued for it" 4 "$(issued)"
like "ra/acme/le holds the new one" "a\.relais\.test\[b\.relais\.test\]:$SA2:" "$(layout le)"
SA=$SA2

# ---- the lock taken by someone else (forged with etcdctl while c2 is
# paused for a moment, so that it cannot take it back in between): c2
# stops ordering, a new router waits; the forged lock deleted → c2 takes
# it again and orders
kill -STOP "${PID[c2]}"
etcdctl del ra/acme/lock >/dev/null && etcdctl put ra/acme/lock intruder >/dev/null
kill -CONT "${PID[c2]}"
is "ra/acme/lock forged" intruder "$(ek ra/acme/lock)"
ok "c2 noticed that it lost the lock" sh -c "for i in \$(seq 1 50); do grep -q 'ra/acme/lock .*: this node no longer orders' '$T/c2.log' && exit 0; sleep 0.1; done; exit 1"
dyn d:le e:le
sleep 3
is "no order while another node holds the lock" 4 "$(orders)"
ok "c2 waits for the lock" grep -q 'ra/acme/lock is held by intruder: waiting for it' "$T/c2.log"
is "nobody serves e.relais.test yet" "" "$(served p1 e.relais.test)"
etcdctl del ra/acme/lock >/dev/null
ok "the forged lock deleted: c2 takes it again and orders e.relais.test, served by p1" \
  until_nonempty 90 served p1 e.relais.test
is "ra/acme/lock is c2's again" c2 "$(ek ra/acme/lock)"
is "one order for it" 5 "$(orders)"

# ---- a restarted proxy serves from etcd at once (restarted with leaseTTL
# 30s, for the SIGSTOP below)
kill -TERM "${PID[p2]}"; wait "${PID[p2]}"
is "p2 stopped with status 0" 0 $?
CL_TTL=30s node_cfg p2 proxy
start_node p2
ok "restarted p2 serves a.relais.test from etcd at once" until_nonempty 5 served p2 a.relais.test
is "the same certificate" "$SA" "$(served p2 a.relais.test)"
is "no order since" 5 "$(orders)"
is "no certificate issued since" 5 "$(issued)"

# ---- a stopped proxy: p2 (SIGSTOP) cannot acknowledge, its node key lives
# on (lease 30 s): c2 waits the 10 s cap, names p2 in a WARN, and lets
# Pebble validate on p1; p2 resumed serves the certificate too
for _ in $(seq 1 50); do [ -n "$(ek ra/nodes/p2)" ] && break; sleep 0.1; done
is "p2 is listed under ra/nodes/" p2 "$(ek ra/nodes/p2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>/dev/null)"
kill -STOP "${PID[p2]}"
T0=$(date +%s)
dyn d:le e:le f:le
WARNRE="ra/acme/challenges/http/[^ :]+: not acknowledged by p2 within 10 s \(acknowledged by: c2, p1\)"
ok "after the cap, c2 names p2 (and only p2) as not acknowledging" \
  sh -c "for i in \$(seq 1 300); do grep -qE '$WARNRE' '$T/c2.log' && exit 0; sleep 0.1; done; exit 1"
T1=$(date +%s)
like "at WARN level" " WRN \\[acme\\] " "$(grep -E "$WARNRE" "$T/c2.log" | head -1)"
ok "c2 waited about the cap before it ($((T1 - T0)) s)" test $((T1 - T0)) -ge 9
WL=$(line_of "$T/c2.log" "$WARNRE")
AL=$(line_of "$T/c2.log" "answering http-01 for f\.relais\.test")
ok "c2 answered Pebble only after the WARN ($WL < $AL)" test "$WL" -gt 0 -a "$WL" -lt "$AL"
ok "validated on p1 anyway: p1 serves f.relais.test" until_nonempty 60 served p1 f.relais.test
kill -CONT "${PID[p2]}"
ok "p2 resumed serves the same f.relais.test certificate" until_nonempty 20 sh -c \
  "s=\$(echo | openssl s_client -connect 127.0.0.1:${WS[p2]} -servername f.relais.test 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'); [ -n \"\$s\" ] && [ \"\$s\" = '$(served p1 f.relais.test)' ] && echo y"
is "one order for it" 6 "$(orders)"
is "one certificate issued for it" 6 "$(issued)"
ok "no acknowledgement left under ra/acme/acks/ (p2's withdrawn on resuming)" until_nonempty 10 acks_gone

# ---- a node that leaves no longer counts: p1 (SIGSTOP, leaseTTL 5s) loses
# its lease, so ra/nodes/p1 goes, and c2 tells Pebble (tls-alpn-01, on p2)
# without the cap nor a WARN; p1 resumed (new lease) serves it too
kill -STOP "${PID[p1]}"
T0=$(date +%s)
dyn d:le e:le f:le g:alpn
ALLRE="ra/acme/challenges/alpn/g\.relais\.test: all 2 live node\(s\) acknowledged it \(c2, p2\)"
ok "p1's lease expired: c2 went on once the two live nodes (c2, p2) acknowledged" \
  sh -c "for i in \$(seq 1 200); do grep -qE '$ALLRE' '$T/c2.log' && exit 0; sleep 0.1; done; exit 1"
T1=$(date +%s)
ok "before the cap ($((T1 - T0)) s), without a WARN about g.relais.test" sh -c \
  "[ $((T1 - T0)) -lt 10 ] && ! grep -q 'challenges/alpn/g.relais.test: not acknowledged' '$T/c2.log'"
ok "validated on p2: p2 serves g.relais.test" until_nonempty 60 served p2 g.relais.test
kill -CONT "${PID[p1]}"
ok "p1 resumed serves the same g.relais.test certificate" until_nonempty 20 sh -c \
  "s=\$(echo | openssl s_client -connect 127.0.0.1:${WS[p1]} -servername g.relais.test 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'); [ -n \"\$s\" ] && [ \"\$s\" = '$(served p2 g.relais.test)' ] && echo y"
is "one order for it" 7 "$(orders)"
ok "p1 is listed under ra/nodes/ again" until_nonempty 10 ek ra/nodes/p1
ok "no acknowledgement left under ra/acme/acks/" until_nonempty 10 acks_gone

for n in c2 p1 p2; do stop_node $n; done
no_sanitizer_report
t_done
