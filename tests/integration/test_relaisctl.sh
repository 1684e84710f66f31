#!/usr/bin/env bash
# test_relaisctl.sh — relaisctl (issue 10) against a real etcd
# (tests/servers/etcd.sh), black box, exact outputs and exit statuses:
#
#  - --version, --help, COMMAND --help, an unknown command (status 1);
#  - apply: a valid document is stored as P/apply/NAME in compact JSON
#    (checked with etcdctl), named by --name or by the file; an invalid
#    one (bad rule, unknown middleware option, a YAML syntax error, a
#    reference to a missing object) gives status 1 and "FILE: key.path:
#    reason" lines, and leaves etcd untouched; a document may use the
#    objects of another applied document (s@other); certificate and users
#    files are inlined, a key that does not match its certificate is
#    refused; --dry-run writes nothing; --delete;
#  - get routers/services/middlewares from etcd (P/config/*, P/apply/*:
#    name@provider) as a table and as JSON, and from a running relais'
#    API (api.insecure, a file provider with an enabled and a disabled
#    router: their status);
#  - status from keys written in the documented shape (leader, generation,
#    two nodes on a lease, one with a last error), table and JSON;
#  - certs import (checked: a mismatched key is refused and nothing is
#    written), list (with an ACME certificate in P/acme/RESOLVER), delete;
#  - backup (mode 0600; leader, nodes and leased keys left out) -> wipe ->
#    restore -> the same keys as etcdctl shows them; restore onto a
#    non-empty prefix refused without --force; --force deletes stale keys;
#    an invalid apply document in a backup refuses the whole restore; 151
#    keys go in 2 transactions (at most 100 operations each);
#  - two real relais nodes in cluster mode (a controller with a file
#    provider, a proxy): status shows the leader and both nodes, get lists
#    what the leader published, a document applied (using the controller's
#    service) is served by both and shown enabled by the proxy's API,
#    --delete removes it, a backup leaves the leader and node keys out;
#  - --config: the connection from a static file's cluster section (flags
#    win);
#  - etcd down: status 2 and a message naming the endpoints tried.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/etcd.sh"

RELAISCTL=${RELAISCTL:-$RELAIS_BUILDDIR/src/relaisctl}
for c in etcd etcdctl curl openssl; do
  command -v $c >/dev/null || { echo "Bail out! $c not installed (CI installs it: see tests/run.sh)"; exit 1; }
done
[ -x "$RELAISCTL" ] || { echo "Bail out! $RELAISCTL not built"; exit 1; }
trap 'etcd_stop >/dev/null 2>&1; t_cleanup' EXIT

etcd_start "$T/etcd" >"$T/etcd-start.log" 2>&1 || { cat "$T/etcd-start.log"; echo "Bail out! etcd does not start"; exit 1; }
EP=$ETCD_ENDPOINT
export ETCDCTL_ENDPOINTS=$EP ETCDCTL_API=3

cd "$T" || exit 1
# ctl ARGS...: relaisctl on this etcd; stdout in $T/out, stderr in $T/err,
# status in $RC
ctl() {
  "$RELAISCTL" --endpoints "$EP" --plugin-dir "$RELAIS_PLUGIN_DIR" "$@" >"$T/out" 2>"$T/err"
  RC=$?
}
out() { cat "$T/out"; }
err() { cat "$T/err"; }
# squeeze: a table with its column padding reduced to one space
squeeze() { tr -s ' ' <"$T/out"; }
eget() { etcdctl get --print-value-only "$1"; }
ekeys() { etcdctl get --prefix --keys-only "$1" | grep -v '^$'; }

# ---- the command line
"$RELAISCTL" --version >"$T/out" 2>&1
like "--version" "^relaisctl [0-9]+\.[0-9]+\.[0-9]+ " "$(out)"
"$RELAISCTL" --help >"$T/out" 2>&1
is "--help: status 0" "0" "$?"
like "--help lists the commands" "certs import NAME --cert FILE --key FILE" "$(out)"
"$RELAISCTL" apply --help >"$T/out" 2>&1
like "apply --help: apply's usage" "^Usage: relaisctl apply FILE \[--name NAME\] \[--dry-run\]" "$(out)"
ctl frobnicate
is "an unknown command: status 1" "1" "$RC"
is "an unknown command: the message" \
  'relaisctl: unknown command "frobnicate" (apply, get, status, certs, backup, restore)' "$(err)"

# ---- apply: valid
cat >"$T/site.yaml" <<'EOF'
http:
  routers:
    r1:
      rule: "Host(`a.test`)"
      service: s1
      middlewares: [m1]
      entryPoints: [web]
  middlewares:
    m1:
      addPrefix:
        prefix: /x
  services:
    s1:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:1
EOF
ctl apply site.yaml
is "apply a valid document: status 0" "0" "$RC"
like "apply prints the name and revision" "^applied site at revision [0-9]+$" "$(out)"
is "apply prints nothing on stderr" "" "$(err)"
is "P/apply/site holds the document as compact JSON" \
  '{"http":{"routers":{"r1":{"rule":"Host(`a.test`)","service":"s1","middlewares":["m1"],"entryPoints":["web"]}},"middlewares":{"m1":{"addPrefix":{"prefix":"/x"}}},"services":{"s1":{"loadBalancer":{"servers":[{"url":"http://127.0.0.1:1"}]}}}}}' \
  "$(eget relais/apply/site)"
rev=$(etcdctl get relais/apply/site -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')
is "the revision printed is the key's" "applied site at revision $rev" "$(out)"

cat >"$T/other.json" <<'EOF'
{"http": {"routers": {"r2": {"rule": "Path(`/b`)", "service": "s1@site"}}}}
EOF
ctl apply other.json --name b-2_x
is "apply JSON, --name, a service of another applied document: status 0" "0" "$RC"
like "... applied as b-2_x" "^applied b-2_x at revision [0-9]+$" "$(out)"
is "... stored" '{"http":{"routers":{"r2":{"rule":"Path(`/b`)","service":"s1@site"}}}}' "$(eget relais/apply/b-2_x)"

# ---- apply: invalid, etcd untouched
before=$(etcdctl get --prefix relais/ -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
cat >"$T/badrule.yaml" <<'EOF'
http:
  routers:
    r1:
      rule: "Host(`a`) &&"
      service: s1
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}]}}
EOF
ctl apply badrule.yaml
is "a bad rule: status 1" "1" "$RC"
is "a bad rule: file, key path, reason; then why nothing was applied" \
  "badrule.yaml: http.routers.r1.rule: column 13: expected a matcher, '(' or '!' but the rule ended
relaisctl: badrule.yaml: invalid: badrule not applied" "$(err)"
is "a bad rule: nothing on stdout" "" "$(out)"
cat >"$T/badopt.yaml" <<'EOF'
http:
  routers:
    r1: {rule: "Host(`a`)", service: s1, middlewares: [m1]}
  middlewares:
    m1: {addPrefix: {prefx: /x}}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}]}}
EOF
ctl apply badopt.yaml
is "an unknown middleware option: status 1" "1" "$RC"
is "an unknown middleware option: every error, with its key path" \
  'badopt.yaml: http.middlewares.m1.addPrefix.prefx: unknown option (expected prefix)
badopt.yaml: http.routers.r1.middlewares[0]: middleware "m1@badopt" is disabled
relaisctl: badopt.yaml: invalid: badopt not applied' "$(err)"
printf 'http:\n  routers:\n    r1: {rule: "Host(`a`)"\n  services: [\n' >"$T/syntax.yaml"
ctl apply syntax.yaml
is "a YAML syntax error: status 1" "1" "$RC"
like "a YAML syntax error: file, line and column" '^syntax\.yaml:[0-9]+:[0-9]+: .*(expected|flow)' "$(err)"
cat >"$T/missing.yaml" <<'EOF'
http:
  routers:
    r9: {rule: "Host(`c`)", service: nope@site}
EOF
ctl apply missing.yaml
is "a service that exists nowhere: status 1" "1" "$RC"
like "a service that exists nowhere: the router's service key" \
  '^missing\.yaml: http\.routers\.r9\.service: .*nope@site' "$(err)"
ctl apply site.yaml --name 'bad name'
is "a bad --name: status 1" "1" "$RC"
is "a bad --name: the rule" 'relaisctl: "bad name": a document name is 1 to 63 of A-Z a-z 0-9 _ -' "$(err)"
ctl apply site.yaml --name ok --dry-run
is "--dry-run: status 0, says so" "0 site.yaml is valid (not applied: --dry-run)" "$RC $(out)"
after=$(etcdctl get --prefix relais/ -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
is "refused documents and --dry-run left etcd untouched (same revision)" "$before" "$after"
is "... no key for them" "relais/apply/b-2_x relais/apply/site" "$(ekeys relais/apply/ | tr '\n' ' ' | sed 's/ $//')"

# ---- apply: certificate and users files inlined; a wrong key refused
pki_ca "$T" ca && pki_leaf "$T" www ca "DNS:www.test,DNS:alt.test" && pki_leaf "$T" other ca "DNS:other.test" ||
  echo "# pki failed: $(tail -3 "$T/pki.log")"
printf '# a comment\nu1:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\n\n  u2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0  \n' >"$T/users.txt"
cat >"$T/files.yaml" <<EOF
http:
  routers:
    r3: {rule: "Host(\`www.test\`)", service: s1@site, middlewares: [auth], tls: {}}
  middlewares:
    auth: {basicAuth: {usersFile: $T/users.txt}}
tls:
  certificates:
    - {certFile: $T/www.pem, keyFile: $T/www.key}
EOF
ctl apply files.yaml
is "apply with certificate and users files: status 0" "0" "$RC"
python3 - "$T/www.pem" "$T/www.key" >"$T/py.out" 2>&1 <<EOF
import json, subprocess, sys
d = json.loads(subprocess.check_output(["etcdctl", "get", "--print-value-only", "relais/apply/files"]))
c = d["tls"]["certificates"][0]
assert c["certFile"] == open(sys.argv[1]).read(), "certFile"
assert c["keyFile"] == open(sys.argv[2]).read(), "keyFile"
a = d["http"]["middlewares"]["auth"]["basicAuth"]
assert a == {"users": ["u1:\$apr1\$H6uskkkW\$IgXLP6ewTrSuBkTrqE8wj/", "u2:\$apr1\$d9hr9HBB\$4HxwgUir3HP4EsggP/QNo0"]}, a
print("ok")
EOF
is "stored: the PEM contents in certFile/keyFile, usersFile's entries in users" "ok" "$(cat "$T/py.out")"
sed "s|$T/www.key|$T/other.key|" "$T/files.yaml" >"$T/wrongkey.yaml"
ctl apply wrongkey.yaml
is "a key that does not match its certificate: status 1" "1" "$RC"
like "... the keyFile's key path" \
  '^wrongkey\.yaml: tls\.certificates\[0\]\.keyFile: the key does not match the certificate' "$(err)"
is "... not stored" "" "$(eget relais/apply/wrongkey)"
sed "s|$T/users.txt|$T/nousers.txt|" "$T/files.yaml" >"$T/nofile.yaml"
ctl apply nofile.yaml
is "a users file that does not exist: status 1 and its key path" \
  "1 nofile.yaml: http.middlewares.auth.basicAuth.usersFile: cannot open $T/nousers.txt: No such file or directory" \
  "$RC $(head -1 "$T/err")"

# ---- get from etcd
etcdctl put relais/config/file '{"http":{"routers":{"f1":{"rule":"Path(`/f`)","service":"s1@site"}},"middlewares":{"auth":{"basicAuth":{"users":["u:h"]}}}}}' >/dev/null
ctl get routers
is "get routers (etcd): status 0" "0" "$RC"
is "get routers (etcd): the table" "NAME PROVIDER RULE SERVICE ENTRYPOINTS
f1@file file Path(\`/f\`) s1@site -
r1@site site Host(\`a.test\`) s1@site web
r2@b-2_x b-2_x Path(\`/b\`) s1@site -
r3@files files Host(\`www.test\`) s1@site -" "$(squeeze)"
ctl get services
is "get services (etcd)" "NAME PROVIDER TYPE SERVERS
s1@site site loadbalancer 1" "$(squeeze)"
ctl get middlewares -o json
python3 - "$T/out" >"$T/py.out" 2>&1 <<'EOF'
import json, sys
l = json.load(open(sys.argv[1]))
print(" ".join("%s:%s:%s" % (o["name"], o["provider"], o["type"]) for o in l))
print(json.dumps(l[0]["basicAuth"]))
EOF
is "get middlewares -o json: names, providers, types; secrets hidden" \
  'auth@file:file:basicauth auth@files:files:basicauth m1@site:site:addprefix
{"users": ["xxxx"]}' "$(cat "$T/py.out")"
ctl get router r1
is "get router NAME (any provider)" "NAME PROVIDER RULE SERVICE ENTRYPOINTS
r1@site site Host(\`a.test\`) s1@site web" "$(squeeze)"
ctl get routers nope
is "get a router that does not exist: status 1, message" "1 relaisctl: no router nope in etcd" "$RC $(err)"

# ---- get from a node's API
RP=$(free_port)
AP=$(free_port)
cat >"$T/node.yaml" <<EOF
http:
  routers:
    good: {rule: "Host(\`good.test\`)", service: s, entryPoints: [web]}
    bad: {rule: "Host(\`bad.test\`) &&", service: s, entryPoints: [web]}
  services:
    s: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}, {url: "http://127.0.0.1:2"}]}}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$RP"}
  traefik: {address: "127.0.0.1:$AP"}
api: {insecure: true}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/node.yaml"}
log: {level: INFO}
workers: 1
EOF
start_relais "$T/relais.yaml" "$AP"
wait_log "configuration [0-9]+ applied: 2 routers" 10
ctl get routers --api "http://127.0.0.1:$AP"
is "get routers --api: status 0" "0" "$RC"
is "get routers --api: the node's routers with their status" "NAME PROVIDER RULE SERVICE ENTRYPOINTS STATUS
api@internal internal PathPrefix(\`/api\`) api@internal traefik enabled
bad@file file Host(\`bad.test\`) && s@file web disabled
dashboard@internal internal PathPrefix(\`/\`) dashboard@internal traefik enabled
good@file file Host(\`good.test\`) s@file web enabled" "$(squeeze)"
ctl get services s --api "127.0.0.1:$AP/"
is "get services NAME --api (no scheme, a trailing slash)" "NAME PROVIDER TYPE SERVERS STATUS
s@file file loadbalancer 2 enabled" "$(squeeze)"
ctl get routers bad --api "http://127.0.0.1:$AP" -o json
is "get routers NAME --api -o json: the API's object" "disabled bad@file" \
  "$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))[0]; print(o["status"], o["name"])' "$T/out")"
DEAD=$(free_port)
ctl get routers --api "http://127.0.0.1:$DEAD"
is "get --api on a port nobody answers: status 2" "2" "$RC"
like "... the URL in the message" "^relaisctl: http://127.0.0.1:$DEAD/api/http/routers.*refused" "$(err)"
kill "$RELAIS_PID" 2>/dev/null; wait "$RELAIS_PID" 2>/dev/null

# ---- status
ctl status
is "status with no node: leader, generation, revision, nodes" "leader: none
generation: none
revision: $(etcdctl get x -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
nodes: 0" "$(squeeze)"
LEASE=$(etcdctl lease grant 120 | awk '{print $2}')
now=$(date +%s)
etcdctl put relais/generation 7 >/dev/null
etcdctl put --lease="$LEASE" relais/leader node-a >/dev/null
etcdctl put --lease="$LEASE" relais/nodes/node-a "{\"name\":\"node-a\",\"role\":\"controller\",\"version\":\"0.1.0\",\"leader\":true,\"started\":$((now - 100)),\"revision\":12,\"generation\":7,\"routers\":3,\"services\":2,\"api\":\"127.0.0.1:8080\",\"lastError\":null,\"lastErrorTime\":null,\"updated\":$((now - 200))}" >/dev/null
etcdctl put --lease="$LEASE" relais/nodes/node-b "{\"name\":\"node-b\",\"role\":\"proxy\",\"version\":\"0.1.0\",\"leader\":false,\"started\":$((now - 100)),\"revision\":11,\"generation\":6,\"routers\":3,\"services\":1,\"api\":null,\"lastError\":\"http.routers.x@file.rule: bad\",\"lastErrorTime\":$((now - 4000)),\"updated\":$((now - 65))}" >/dev/null
etcdctl put --lease="$LEASE" relais/acme/lock node-a >/dev/null
ctl status
is "status: status 0" "0" "$RC"
squeeze >"$T/status.txt"
rev=$(etcdctl get x -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
is "status: the header" "leader: node-a
generation: 7
revision: $rev
nodes: 2
NAME ROLE LEADER REVISION GENERATION ROUTERS SERVICES UPDATED LAST ERROR" "$(head -5 "$T/status.txt")"
# ages are computed at the command's second: allow a few more
like "status: the leader's line" '^node-a controller \* 12 7 3 2 3m2[0-5]s ago -$' "$(sed -n 6p "$T/status.txt")"
like "status: a proxy with a last error (its age too)" \
  '^node-b proxy - 11 6 3 1 1m([5-9]|10)s ago http.routers.x@file.rule: bad \(1h6m ago\)$' "$(sed -n 7p "$T/status.txt")"
ctl status -o json
python3 - "$T/out" >"$T/py.out" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["prefix"], d["leader"], d["generation"], [(n["name"], n["leader"], n["role"]) for n in d["nodes"]])
EOF
is "status -o json" "relais node-a 7 [('node-a', True, 'controller'), ('node-b', False, 'proxy')]" "$(cat "$T/py.out")"

# ---- certs
ctl certs import www --cert www.pem --key www.key
is "certs import: status 0" "0" "$RC"
like "certs import: what was imported" \
  "^imported www \(www.test,alt.test, not after [0-9-]+T[0-9:]+Z\) at revision [0-9]+$" "$(out)"
python3 - "$T/www.pem" "$T/www.key" >"$T/py.out" 2>&1 <<'EOF'
import json, subprocess, sys
d = json.loads(subprocess.check_output(["etcdctl", "get", "--print-value-only", "relais/certs/www"]))
print(sorted(d) == ["certificate", "key"] and d["certificate"] == open(sys.argv[1]).read()
      and d["key"] == open(sys.argv[2]).read())
EOF
is "P/certs/www: {certificate, key} as PEM" "True" "$(cat "$T/py.out")"
ctl certs import mismatch --cert www.pem --key other.key
is "certs import with a key of another certificate: status 1" "1" "$RC"
is "... the message" "relaisctl: other.key: the key does not match the certificate www.pem: nothing imported" "$(err)"
is "... nothing written" "" "$(eget relais/certs/mismatch)"
ctl certs import notpem --cert www.key --key www.key
is "certs import of a key as the certificate: status 1, refused" \
  "1 relaisctl: www.key: no PEM certificate found: nothing imported" "$RC $(err)"
etcdctl put relais/acme/le "{\"Account\":{\"Email\":\"a@b.test\"},\"Certificates\":[{\"domain\":{\"main\":\"other.test\",\"sans\":[]},\"certificate\":\"$(base64 -w0 other.pem)\",\"key\":\"$(base64 -w0 other.key)\",\"Store\":\"default\"}]}" >/dev/null
na=$(openssl x509 -in www.pem -noout -enddate | sed 's/notAfter=//')
na=$(date -u -d "$na" +%Y-%m-%dT%H:%M:%SZ)
ctl certs list
is "certs list: imported and ACME certificates" "NAME DOMAINS NOT-AFTER ISSUER SOURCE
other.test other.test $(date -u -d "$(openssl x509 -in other.pem -noout -enddate | sed 's/notAfter=//')" +%Y-%m-%dT%H:%M:%SZ) relais test ca acme:le
www www.test,alt.test $na relais test ca relaisctl" "$(squeeze)"
ctl certs delete nothere
is "certs delete of a missing name: status 1" "1 relaisctl: no certificate nothere (relais/certs/nothere)" "$RC $(err)"

# ---- backup, wipe, restore
etcdctl put relais/static '{"log":{"level":"DEBUG"}}' >/dev/null
ctl backup backup.json
is "backup: status 0" "0" "$RC"
like "backup: what was saved" "^backed up 8 keys of prefix relais at revision [0-9]+ to backup.json$" "$(out)"
is "backup: mode 0600" "600" "$(stat -c %a backup.json)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["relaisctl_backup"], d["prefix"], " ".join(sorted(d["keys"])))' backup.json >"$T/py.out"
is "backup: every key but the leader, nodes and leased ones" \
  "1 relais acme/le apply/b-2_x apply/files apply/site certs/www config/file generation static" "$(cat "$T/py.out")"
etcdctl get --prefix relais/ >"$T/before.txt"
ctl backup -
is "backup -: the same document on stdout" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted(d["keys"].items()))' backup.json)" \
  "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d["keys"].items()))' <"$T/out")"
ctl restore backup.json
is "restore onto the non-empty prefix: status 1" "1" "$RC"
like "... refused without --force" "^relaisctl: prefix relais is not empty \(8 keys, relais/acme/le first\): use --force" "$(err)"
etcdctl lease revoke "$LEASE" >/dev/null
etcdctl del --prefix relais/ >/dev/null
is "wiped" "" "$(ekeys relais/)"
ctl restore backup.json
is "restore: status 0" "0" "$RC"
like "restore: what was written" "^restored 8 keys into prefix relais in 1 transaction, revision [0-9]+$" "$(out)"
etcdctl get --prefix relais/ >"$T/after.txt"
python3 - "$T/before.txt" "$T/after.txt" >"$T/py.out" <<'EOF'
import sys
def pairs(p):
    l = open(p, "rb").read().split(b"\n")
    return {l[i]: l[i + 1] for i in range(0, len(l) - 1, 2)}
b, a = pairs(sys.argv[1]), pairs(sys.argv[2])
for k in [k for k in b if k == b"relais/leader" or k.startswith(b"relais/nodes/") or k == b"relais/acme/lock"]:
    del b[k]
print("same" if a == b else "differ: %r" % sorted(set(a.items()) ^ set(b.items()))[:3])
EOF
is "after restore, etcdctl get --prefix shows the same keys and values (leased ones aside)" "same" "$(cat "$T/py.out")"
etcdctl put relais/apply/stale '{}' >/dev/null
ctl restore backup.json --force
like "restore --force: deletes the stale key" \
  "^restored 8 keys into prefix relais in 1 transaction, revision [0-9]+ \(1 stale keys deleted\)$" "$(out)"
is "... gone" "" "$(eget relais/apply/stale)"
python3 - backup.json >"$T/tampered.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["keys"]["apply/site"] = d["keys"]["apply/site"].replace("Host(`a.test`)", "Host(`a.test`")
print(json.dumps(d))
EOF
etcdctl del --prefix relais/ >/dev/null
ctl restore tampered.json
is "restore of a backup with an invalid apply document: status 1" "1" "$RC"
like "... the key and the path of the error" \
  '^tampered\.json: keys\.apply/site: http\.routers\.r1\.rule: ' "$(err)"
is "... nothing written" "" "$(ekeys relais/)"
python3 - >"$T/many.json" <<'EOF'
import json
keys = {"config/p%03d" % i: json.dumps({"http": {"routers": {"r": {"rule": "Path(`/%d`)" % i, "service": "s@x"}}}}) for i in range(150)}
keys["generation"] = "3"
print(json.dumps({"relaisctl_backup": 1, "prefix": "elsewhere", "revision": 1, "created": "2026-01-01T00:00:00Z", "keys": keys}))
EOF
ctl restore many.json
like "151 keys: two transactions (at most 100 operations each), the backup's prefix noted" \
  "^restored 151 keys into prefix relais in 2 transactions, revision [0-9]+ \(backup of prefix elsewhere\)$" "$(out)"
is "... all there" "151" "$(ekeys relais/ | wc -l | tr -d ' ')"
etcdctl del --prefix relais/ >/dev/null

# ---- two real relais nodes (cluster mode): a controller and a proxy
start_whoami w1
CW=$WHOAMI_PORT
C_WEB=$(free_port); C_API=$(free_port); P_WEB=$(free_port); P_API=$(free_port)
cat >"$T/cdyn.yaml" <<EOF
http:
  routers:
    c1: {rule: "Host(\`c1.test\`)", service: s1}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$CW"}]}}
EOF
# cnode NAME ROLE WEB-PORT API-PORT [PROVIDERS-YAML]: writes $T/NAME.yaml
cnode() {
  cat >"$T/$1.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$3"}
  traefik: {address: "127.0.0.1:$4"}
api: {insecure: true}
providers:
  providersThrottleDuration: 0s
${5:-}
log: {level: INFO}
workers: 1
cluster:
  role: $2
  nodeName: $1
  prefix: clu
  leaseTTL: 2s
  etcd:
    endpoints: ["$EP"]
    timeout: 1s
EOF
}
cnode ctl-1 controller "$C_WEB" "$C_API" "  file: {filename: \"$T/cdyn.yaml\"}"
cnode px-1 proxy "$P_WEB" "$P_API"
start_relais "$T/ctl-1.yaml" "$C_API"; CPID=$RELAIS_PID
start_relais "$T/px-1.yaml" "$P_API"; PXPID=$RELAIS_PID
# until_ok SECONDS CMD...: waits until CMD succeeds
until_ok() {
  local n=$(( $1 * 20 )) i; shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.05; done
  return 1
}
two_nodes() {
  "$RELAISCTL" --endpoints "$EP" --prefix clu status -o json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); n=d["nodes"]; sys.exit(not (d["leader"] == "ctl-1" and len(n) == 2 and d["generation"] and all(x.get("routers") == 1 for x in n)))'
}
ok "cluster: status shows a leader and two nodes serving one router (within 15 s)" until_ok 15 two_nodes
ctl --prefix clu status
squeeze >"$T/cstatus.txt"
like "cluster status: the leader" "^leader: ctl-1$" "$(head -1 "$T/cstatus.txt")"
like "cluster status: the controller leads" '^ctl-1 controller \* [0-9]+ [1-9][0-9]* 1 1 [0-9]+s ago -$' \
  "$(grep '^ctl-1 ' "$T/cstatus.txt")"
like "cluster status: the proxy" '^px-1 proxy - [0-9]+ [1-9][0-9]* 1 1 [0-9]+s ago -$' \
  "$(grep '^px-1 ' "$T/cstatus.txt")"
ctl --prefix clu get routers
is "cluster get routers: what the leader published (P/config/file)" "NAME PROVIDER RULE SERVICE ENTRYPOINTS
c1@file file Host(\`c1.test\`) s1@file -" "$(squeeze)"
cat >"$T/app.yaml" <<'EOF'
http:
  routers:
    app: {rule: "Host(`app.test`)", service: s1@file}
EOF
ctl --prefix clu apply app.yaml
like "cluster: apply a document that uses the controller's service" "^applied app at revision [0-9]+$" "$(out)"
code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$2/"; }
served() { [ "$(code app.test "${2:-$P_WEB}")" = "$1" ]; }
ok "cluster: the proxy serves it (within 10 s)" until_ok 10 served 200
ok "cluster: so does the controller (within 10 s)" until_ok 10 served 200 "$C_WEB"
ctl --prefix clu get routers app --api "http://127.0.0.1:$P_API"
is "cluster: get --api on the proxy shows it enabled" "NAME PROVIDER RULE SERVICE ENTRYPOINTS STATUS
app@app app Host(\`app.test\`) s1@file web enabled" "$(squeeze)"
ctl --prefix clu apply --delete app
like "cluster: apply --delete" "^deleted app at revision [0-9]+$" "$(out)"
ok "cluster: the proxy stops serving it (within 10 s)" until_ok 10 served 404
ctl --prefix clu backup cluster-backup.json
is "cluster: backup leaves the leader and the nodes out" "config/file generation" \
  "$(python3 -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1]))["keys"])))' cluster-backup.json)"
stop_relais_clean "$PXPID"
stop_relais_clean "$CPID"

# ---- --config: the connection from a static file's cluster section
cat >"$T/cluster.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$RP"}
cluster:
  role: proxy
  prefix: fromfile
  etcd:
    endpoints: ["$EP"]
    timeout: 2s
EOF
"$RELAISCTL" --config "$T/cluster.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" apply site.yaml >"$T/out" 2>"$T/err"
is "--config: endpoints and prefix from the cluster section" "0 site" \
  "$? $(ekeys fromfile/ | sed 's|fromfile/apply/||')"
etcdctl put fromfile/leader node-x >/dev/null
"$RELAISCTL" --config "$T/cluster.yaml" status >"$T/out" 2>"$T/err"
is "--config: status reads the file's prefix" "leader: node-x" "$(head -1 "$T/out" | tr -s " ")"
"$RELAISCTL" --config "$T/cluster.yaml" --prefix flag status >"$T/out" 2>"$T/err"
is "--config: a flag wins over the file (--prefix)" "leader: none" "$(head -1 "$T/out" | tr -s " ")"
"$RELAISCTL" --config "$T/site.yaml" status >"$T/out" 2>"$T/err"
is "--config without a cluster section: status 1" \
  "1 relaisctl: $T/site.yaml: no cluster section (cluster: {etcd: {endpoints: [...]}})" "$? $(err)"

# ---- etcd down
etcd_stop >/dev/null 2>&1
DEAD2=$(free_port)
"$RELAISCTL" --endpoints "$EP,127.0.0.1:$DEAD2" --timeout 1s status >"$T/out" 2>"$T/err"
is "etcd down: status 2" "2" "$?"
like "etcd down: the message names every endpoint tried" \
  "^relaisctl: etcd unreachable \(tried $EP, 127.0.0.1:$DEAD2\): " "$(err)"
ctl apply site.yaml
is "etcd down: apply gives status 2 too" "2" "$RC"
t_done
