#!/usr/bin/env bash
# Cluster mode (issue 10) against a real three-member etcd cluster on
# loopback: two controllers (file provider on one shared dynamic file) and
# two proxy nodes.  Checks: one leader, the configuration reaches both
# proxies, the etcd layout (leader, config, generation, nodes), changes
# followed; kill -9 of the leading controller → the other leads within
# about leaseTTL and changes still reach the proxies; a member of etcd
# killed → nothing stops; a proxy killed during a bounded load over both →
# no request to the survivor fails; etcd entirely down → the proxies keep
# serving, back → changes resume; a paused leader is deposed and cannot
# write (fencing); documents of P/apply and certificates of P/certs are
# served by every node; a clean stop hands the leadership over at once;
# the name collision rule of P/apply/NAME against P/config/NAME applies
# whichever key changes (apply accepted, config/NAME published → refused,
# config/NAME deleted → served again); bad cluster sections are refused
# with file and key path.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
cl_need etcd etcdctl curl python3 openssl

plugin_dir_own
start_whoami w1; W1=$WHOAMI_PORT
start_whoami w2; W2=$WHOAMI_PORT
cl_etcd_start
CL_PREFIX=rt/cl CL_TTL=2s
# has DESC ACTUAL REGEX: like, with the value first
has() { like "$1" "$3" "$2"; }

DYN=$T/dyn.yaml CL_DYN=$T/dyn.yaml
# dyn HOST... : routers r_HOST for Host(HOST) → service s1 (w1); the last
# router of the list goes to s2 (w2)
dyn() {
  {
    echo "http:"
    echo "  routers:"
    local h
    for h in "$@"; do
      printf '    r-%s:\n      rule: "Host(`%s`)"\n      service: %s\n' "${h%%.*}" "$h" \
        "$([ "$h" = "${!#}" ] && echo s2 || echo s1)"
    done
    echo "  services:"
    printf '    s1:\n      loadBalancer:\n        servers:\n          - url: "http://127.0.0.1:%s"\n' "$W1"
    printf '    s2:\n      loadBalancer:\n        servers:\n          - url: "http://127.0.0.1:%s"\n' "$W2"
    if [ -n "${DYN_TLS:-}" ]; then
      printf 'tls:\n  certificates:\n    - certFile: "%s.pem"\n      keyFile: "%s.key"\n' "$DYN_TLS" "$DYN_TLS"
    fi
  } >"$DYN.tmp" && mv "$DYN.tmp" "$DYN"
}
dyn a.test b.test

for n in c1 c2 p1 p2; do PORT[$n]=$(free_port); done
for n in c1 c2; do node_cfg $n controller; done
for n in p1 p2; do node_cfg $n proxy; done

# --check: the cluster section is validated; bad ones name file and key
out=$("$RELAIS" --check --config "$T/p1.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1)
is "--check accepts a proxy node's configuration" 0 $?
cp "$T/p1.yaml" "$T/bad.yaml"; sed -i 's/role: proxy/role: router/' "$T/bad.yaml"
out=$("$RELAIS" --check --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1); rc=$?
is "--check refuses role: router" 1 "$rc"
has "the error names file, key path and the expected values" \
  "$out" "bad.yaml: cluster.role: expected controller or proxy, got \"router\""
cp "$T/p1.yaml" "$T/bad2.yaml"; sed -i 's/leaseTTL: 2s/leaseTTL: 500ms/; s/prefix: rt\/cl/prefix: \/rt/' "$T/bad2.yaml"
out=$("$RELAIS" --check --config "$T/bad2.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1)
has "leaseTTL below 2s refused" "$out" "bad2.yaml: cluster.leaseTTL: expected whole seconds from 2s to 3600s"
has "a prefix with a leading slash refused" "$out" "bad2.yaml: cluster.prefix: expected key components"
printf 'entryPoints:\n  web:\n    address: "127.0.0.1:1"\ncluster:\n  role: proxy\n  etcd: {}\n' >"$T/bad3.yaml"
out=$("$RELAIS" --check --config "$T/bad3.yaml" --plugin-dir "$PLUGIN_DIR" 2>&1)
has "missing endpoints refused" "$out" "bad3.yaml: cluster.etcd.endpoints: expected a list of 1 to 32 endpoints"

# get HOST NODE: status and server name of a request through NODE
get() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Host: $1" "http://127.0.0.1:${PORT[$2]}/" 2>/dev/null
}
# wait_get HOST NODE CODE [SECONDS]: until GET gives CODE
wait_get() {
  local i
  for ((i = 0; i < ${4:-10} * 10; i++)); do
    [ "$(get "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  return 1
}
name_of() {
  curl -s -D - -o /dev/null --max-time 3 -H "Host: $1" "http://127.0.0.1:${PORT[$2]}/" \
    | tr -d '\r' | sed -n 's/^X-Whoami-Name: //Ip'
}

start_node c1
for _ in $(seq 1 100); do [ "$(ek rt/cl/leader)" = c1 ] && break; sleep 0.1; done
is "the first controller leads (rt/cl/leader = c1)" c1 "$(ek rt/cl/leader)"
start_node c2
start_node p1
start_node p2
ok "proxy p1 serves a.test from etcd" wait_get a.test p1 200
ok "proxy p2 serves a.test from etcd" wait_get a.test p2 200
is "p1: b.test goes to w2" w2 "$(name_of b.test p1)"
is "p2: a.test goes to w1" w1 "$(name_of a.test p2)"
is "controller c2 (not leading) serves its own providers" 200 "$(get a.test c2)"
is "still one leader after four nodes started" c1 "$(ek rt/cl/leader)"
doc=$(ek rt/cl/config/file)
has "rt/cl/config/file holds the file provider's routers as JSON" "$doc" '"r-a":\{"rule":"Host\(`a.test`\)","service":"s1"\}'
gen1=$(ek rt/cl/generation)
has "rt/cl/generation is a number" "$gen1" '^[0-9]+$'
for n in c1 c2 p1 p2; do
  st=$(ek "rt/cl/nodes/$n")
  has "rt/cl/nodes/$n holds its status" "$st" "\"name\":\"$n\""
done
has "p1's status: role proxy, 2 routers, leader false" "$(ek rt/cl/nodes/p1)" \
  '"leader":false.*"role":"proxy","routers":2'
has "c1's status: leader true" "$(ek rt/cl/nodes/c1)" '"leader":true'
is "nodes/* keys are on leases (4 nodes)" 4 \
  "$(etcdctl get --prefix rt/cl/nodes/ -w json | python3 -c 'import json,sys; print(sum(1 for k in json.load(sys.stdin)["kvs"] if k.get("lease")))')"
is "the proxies ran no provider (warned about none: they have none)" "" \
  "$(grep -h 'provider file' "$T/p1.log" "$T/p2.log" | head -1)"

# an idle cluster writes nothing (node statuses do not answer each other)
erev() { etcdctl get rt/cl/leader -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'; }
r1=$(erev); sleep 3; r2=$(erev)
echo "# etcd revisions during 3 idle seconds: $((r2 - r1))"
ok "an idle cluster makes at most 2 etcd revisions in 3 s ($r1 -> $r2)" test $((r2 - r1)) -le 2

# a change of the dynamic file reaches both proxies
dyn a.test b.test c.test
ok "c.test added on the controller reaches p1" wait_get c.test p1 200
ok "... and p2" wait_get c.test p2 200
is "c.test served by w2 on p2" w2 "$(name_of c.test p2)"
gen2=$(ek rt/cl/generation)
ok "the generation grew ($gen1 -> $gen2)" test "$gen2" -gt "$gen1"

# kill -9 the leader: c2 takes over within about leaseTTL
t0=$(date +%s%N)
kill -9 "${PID[c1]}"
for _ in $(seq 1 100); do [ "$(ek rt/cl/leader)" = c2 ] && break; sleep 0.1; done
t1=$(date +%s%N)
is "after kill -9 of c1, c2 leads" c2 "$(ek rt/cl/leader)"
ms=$(( (t1 - t0) / 1000000 ))
echo "# takeover after kill -9 of the leader: $ms ms (leaseTTL 2s)"
ok "takeover within 4 s (leaseTTL 2s + a keepalive period)" test "$ms" -lt 4000
dyn a.test b.test c.test d.test
ok "a change after the takeover reaches p1" wait_get d.test p1 200
ok "... and p2" wait_get d.test p2 200
has "c2 logged that it leads" "$(cat "$T/c2.log")" "node c2 leads the controllers"

# kill one etcd member: nothing stops
etcd_member_kill 1
dyn a.test b.test c.test d.test e.test
ok "with etcd member 1 dead, a change reaches p1" wait_get e.test p1 200 15
ok "... and p2" wait_get e.test p2 200 15
is "c2 still leads" c2 "$(ek rt/cl/leader)"
etcd_member_restart 1 >/dev/null 2>&1

# kill a proxy during a bounded load over both: the survivor never fails
python3 "$RELAIS_SRCDIR/tests/integration/loadgen.py" --port "${PORT[p1]}" --path / \
  --host a.test --conns 4 --max 20000 --seconds 6 --timeout 3 >"$T/load1.out" 2>"$T/load1.err" &
L1=$!
python3 "$RELAIS_SRCDIR/tests/integration/loadgen.py" --port "${PORT[p2]}" --path / \
  --host a.test --conns 4 --max 20000 --seconds 6 --timeout 3 >"$T/load2.out" 2>"$T/load2.err" &
L2=$!
sleep 2
kill -9 "${PID[p1]}"
wait $L1 $L2
r2=$(sed -n 's/^requests=//p' "$T/load2.out")
ok "load on p2 ran ($r2 requests)" test "${r2:-0}" -gt 100
is "p2: no request failed while p1 was killed" 0 "$(sed -n 's/^errors=//p' "$T/load2.out")"
is "p2: every answer was 200" 0 "$(sed -n 's/^non200=//p' "$T/load2.out")"
ok "p1's load did see failures (it was killed)" test "$(sed -n 's/^errors=//p' "$T/load1.out")" -gt 0
node_cfg p1 proxy
start_node p1
ok "p1 restarted serves e.test from etcd" wait_get e.test p1 200

# etcd entirely down: the proxies keep serving the last configuration
for i in 1 2 3; do etcd_member_stop $i >/dev/null 2>&1; done
sleep 1
is "etcd down: p2 still serves e.test" 200 "$(get e.test p2)"
is "etcd down: p1 still serves a.test" 200 "$(get a.test p1)"
dyn a.test b.test c.test d.test e.test f.test
sleep 1
is "etcd down: the change cannot arrive (f.test 404 on p2)" 404 "$(get f.test p2)"
# all three at once (a member alone waits for a quorum)
for i in 1 2 3; do _etcd_launch $i; done
for i in 1 2 3; do _etcd_wait $i >/dev/null 2>&1; done
ok "etcd back: the change made meanwhile reaches p2" wait_get f.test p2 200 30
ok "... and p1" wait_get f.test p1 200 30

# fencing: a paused leader loses its lease; the other controller leads and
# the paused one, resumed, does not overwrite anything
node_cfg c1 controller
start_node c1
ldr=$(ek rt/cl/leader)
follower=$([ "$ldr" = c2 ] && echo c1 || echo c2)
kill -STOP "${PID[$ldr]}"
for _ in $(seq 1 100); do [ "$(ek rt/cl/leader)" = "$follower" ] && break; sleep 0.1; done
is "leader $ldr paused: $follower leads" "$follower" "$(ek rt/cl/leader)"
dyn a.test b.test c.test d.test e.test f.test g.test
ok "a change made while $ldr is paused reaches p2" wait_get g.test p2 200
kill -CONT "${PID[$ldr]}"
sleep 3
is "after $ldr resumes, $follower still leads" "$follower" "$(ek rt/cl/leader)"
has "$ldr logged that it no longer leads" "$(cat "$T/$ldr.log")" "node $ldr no longer leads"
is "p2 still serves g.test" 200 "$(get g.test p2)"

# documents of relaisctl (P/apply) and certificates (P/certs) on every node
etcdctl put rt/cl/apply/extra "{\"http\":{\"routers\":{\"x\":{\"rule\":\"Host(\`x.test\`)\",\"service\":\"sx\"}},\"services\":{\"sx\":{\"loadBalancer\":{\"servers\":[{\"url\":\"http://127.0.0.1:$W2\"}]}}}}}" >/dev/null
ok "rt/cl/apply/extra served by p1" wait_get x.test p1 200
ok "... by p2" wait_get x.test p2 200
ok "... and by a controller" wait_get x.test c2 200
etcdctl put rt/cl/apply/extra '{"http": oops' >/dev/null
sleep 1
is "a broken document keeps the previous one serving" 200 "$(get x.test p2)"
has "... and the error names the key and the position" "$(cat "$T/p2.log")" \
  "etcd key rt/cl/apply/extra: 1:.*previous configuration of extra is kept"
has "... and reaches the node's status" "$(ek rt/cl/nodes/p2)" '"lastError":"etcd key rt/cl/apply/extra'
etcdctl del rt/cl/apply/extra >/dev/null
ok "deleting it removes x.test" wait_get x.test p1 404

# TLS: a certificate in P/certs, a TLS router in P/apply
mkdir -p "$T/pki"; pki_ca "$T/pki" ca; pki_leaf "$T/pki" t "ca" "DNS:t.test"
python3 - "$T/pki/t.pem" "$T/pki/t.key" >"$T/cert.json" <<'PY'
import json, sys
print(json.dumps({"certificate": open(sys.argv[1]).read(), "key": open(sys.argv[2]).read()}))
PY
etcdctl put rt/cl/certs/t.test <"$T/cert.json" >/dev/null
etcdctl put rt/cl/apply/tls "{\"http\":{\"routers\":{\"t\":{\"rule\":\"Host(\`t.test\`)\",\"service\":\"st\",\"tls\":{}}},\"services\":{\"st\":{\"loadBalancer\":{\"servers\":[{\"url\":\"http://127.0.0.1:$W1\"}]}}}}}" >/dev/null
TP=$(free_port)
tls_ok() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$T/pki/ca.pem" \
    --resolve "t.test:${PORT[$1]}:127.0.0.1" "https://t.test:${PORT[$1]}/" 2>/dev/null
}
# TLS needs a TLS entry point: the routers here are on web (plain), so the
# certificate is checked through the API-less way: the TLS store answers on
# a router with tls on the same listener (relais serves TLS and plain on
# one entry point only by router); use openssl on p2's web port
for _ in $(seq 1 50); do
  subj=$(echo | openssl s_client -connect "127.0.0.1:${PORT[p2]}" -servername t.test 2>/dev/null \
    | openssl x509 -noout -subject 2>/dev/null)
  [ -n "$subj" ] && break; sleep 0.1
done
has "p2 presents the certificate of rt/cl/certs/t.test" "$subj" "CN *= *t"
is "https://t.test through p2 (verified by the test CA): 200" 200 "$(tls_ok p2)"
is "... through p1: 200" 200 "$(tls_ok p1)"

# a certificate named by path on the controllers reaches the proxies (its
# contents are published, the proxies have no such file)
pki_leaf "$T/pki" u "ca" "DNS:u.test"
DYN_TLS=$T/pki/u dyn a.test b.test c.test d.test e.test f.test g.test
for _ in $(seq 1 50); do
  subj=$(echo | openssl s_client -connect "127.0.0.1:${PORT[p1]}" -servername u.test 2>/dev/null \
    | openssl x509 -noout -subject 2>/dev/null)
  case "$subj" in *"CN = u"*) break ;; esac; sleep 0.1
done
has "p1 presents the certificate the controllers' file names by path" "$subj" "CN *= *u$"
has "rt/cl/config/file holds the certificate's PEM, not its path" "$(ek rt/cl/config/file)" \
  '"certFile":"-----BEGIN CERTIFICATE-----'

# clean stop of the leader: the lease is revoked, the other leads at once
ldr=$(ek rt/cl/leader)
other=$([ "$ldr" = c2 ] && echo c1 || echo c2)
t0=$(date +%s%N)
kill -TERM "${PID[$ldr]}"
for _ in $(seq 1 50); do [ "$(ek rt/cl/leader)" = "$other" ] && break; sleep 0.05; done
t1=$(date +%s%N)
is "after SIGTERM of $ldr, $other leads" "$other" "$(ek rt/cl/leader)"
ms=$(( (t1 - t0) / 1000000 ))
echo "# takeover after a clean stop: $ms ms"
ok "within 1.5 s (the lease is revoked, no TTL wait)" test "$ms" -lt 1500
wait "${PID[$ldr]}"; is "$ldr stopped with status 0" 0 $?
is "its node key is gone with its lease" "" "$(ek rt/cl/nodes/$ldr)"

# the name collision rule, both ways: P/apply/NAME is refused while
# P/config/NAME exists (a controller's provider keeps its name), whichever
# of the two keys changed last.  No controller runs at first, so that
# nobody publishes config/file meanwhile.
stop_node "$other"
is "no leader left" "" "$(ek rt/cl/leader)"
etcdctl del rt/cl/config/file >/dev/null
ok "config/file deleted (no controller runs): a.test gone from p1" wait_get a.test p1 404
etcdctl put rt/cl/apply/file "{\"http\":{\"routers\":{\"z\":{\"rule\":\"Host(\`z.test\`)\",\"service\":\"sz\"}},\"services\":{\"sz\":{\"loadBalancer\":{\"servers\":[{\"url\":\"http://127.0.0.1:$W2\"}]}}}}}" >/dev/null
ok "apply/file accepted without config/file: p1 serves z.test" wait_get z.test p1 200
is "... answered by w2 (the document's server)" w2 "$(name_of z.test p1)"
ok "... p2 too" wait_get z.test p2 200
# a controller running the file provider leads and publishes config/file
node_cfg c1 controller
start_node c1
for _ in $(seq 1 100); do [ -n "$(ek rt/cl/config/file)" ] && break; sleep 0.1; done
has "the new leader c1 published config/file" "$(ek rt/cl/config/file)" '"r-a"'
ok "config/file published: p1 serves the controllers' a.test again" wait_get a.test p1 200
ok "... and the refused apply/file's z.test is gone from p1" wait_get z.test p1 404
ok "... and from p2" wait_get z.test p2 404
is "p2 serves the controllers' g.test (w2)" w2 "$(name_of g.test p2)"
has "p1's log says which document is refused and why" "$(cat "$T/p1.log")" \
  "etcd key rt/cl/apply/file refused: provider name file is published by the controllers"
has "... and so does its status (lastError)" "$(ek rt/cl/nodes/p1)" \
  '"lastError":"etcd key rt/cl/apply/file refused: provider name file is published'
has "c1, running provider file, refuses it too" "$(cat "$T/c1.log")" \
  "etcd key rt/cl/apply/file refused: provider name file is one of this controller's providers"
is "c1 serves its own provider only (z.test 404)" 404 "$(get z.test c1)"
# the controllers stop publishing file: c1 leads again without the file
# provider, and as leader deletes config/file
stop_node c1
node_cfg c1 proxy; sed -i 's/role: proxy/role: controller/' "$T/c1.yaml"
start_node c1
for _ in $(seq 1 100); do [ -z "$(ek rt/cl/config/file)" ] && break; sleep 0.1; done
is "c1, leading without provider file, deleted config/file" "" "$(ek rt/cl/config/file)"
ok "config/file gone: p1 serves apply/file's z.test again" wait_get z.test p1 200
is "... answered by w2" w2 "$(name_of z.test p1)"
ok "... p2 too" wait_get z.test p2 200
is "... and a.test went with config/file" 404 "$(get a.test p1)"
has "p1's log says the document is served again" "$(cat "$T/p1.log")" \
  "etcd key rt/cl/apply/file: rt/cl/config/file is gone, provider name file is free: the document is served"
ok "c1, the leader that deleted config/file (no provider file), serves z.test too" \
  wait_get z.test c1 200

for n in c1 p1 p2; do stop_node $n; done
no_sanitizer_report
t_done
