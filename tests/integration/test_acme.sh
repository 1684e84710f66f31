#!/usr/bin/env bash
# certificatesResolvers end to end: relais against a real Pebble
# (tests/servers/pebble.sh; 5 % of good nonces rejected, so retries run).
# Pebble validates http-01 on relais' "web" entry point and tls-alpn-01 on
# its "websecure" one; the routers' Host names become certificates that
# relais serves without a restart; acme.json (mode 0600, Traefik's layout)
# lets a restarted relais serve at once without ordering; a renewal by the
# timer is served without a restart; the httpChallenge entry point changed
# at run time (SIGHUP: another address, so another slot) still answers the
# challenges; bad resolver options are refused by --check with their key
# path.
. "$(dirname "$0")/lib.sh"

command -v pebble >/dev/null || { echo "Bail out! pebble not installed (apt-get install pebble)"; exit 1; }
command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

WEB=$(free_port); WS=$(free_port)
export PEBBLE_HTTP01_PORT=$WEB PEBBLE_TLSALPN01_PORT=$WS
. "$RELAIS_SRCDIR/tests/servers/pebble.sh"
trap 'pebble_stop; t_cleanup' EXIT
pebble_start "$T/pebble" >"$T/pebble-start.log" 2>&1 \
  || { echo "Bail out! pebble does not start"; cat "$T/pebble-start.log"; exit 1; }
curl -sf --max-time 10 --cacert "$PEBBLE_CA_CERT" "$PEBBLE_MGMT_URL/roots/0" >"$T/root.pem"
ok "Pebble's issuing root fetched" grep -q "BEGIN CERTIFICATE" "$T/root.pem"

start_whoami w1; P1=$WHOAMI_PORT
ST=$T/acme.json
cat >"$T/dyn.yaml" <<EOF
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
    d:
      rule: PathPrefix(\`/\`)
      entryPoints: [websecure]
      service: s
      tls:
        certResolver: le
        domains: [{main: d.relais.test, sans: [e.relais.test]}]
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
tcp:
  routers:
    t:
      rule: HostSNI(\`t.relais.test\`)
      entryPoints: [websecure]
      service: ts
      tls: {certResolver: le}
  services:
    ts:
      loadBalancer:
        servers: [{address: "127.0.0.1:$P1"}]
EOF
# relais_yaml FILE [EXTRA-ACME-OPTIONS]
relais_yaml() {
  cat >"$1" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WEB"
  websecure:
    address: "127.0.0.1:$WS"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
certificatesResolvers:
  le:
    acme:
      email: ops@relais.test
      caServer: "$PEBBLE_DIRECTORY_URL"
      caCertificates: ["$PEBBLE_CA_CERT"]
      storage: "$ST"
      keyType: EC256
      httpChallenge: {entryPoint: web}
      ${2:-}
  alpn:
    acme:
      email: ops@relais.test
      caServer: "$PEBBLE_DIRECTORY_URL"
      caCertificates: ["$PEBBLE_CA_CERT"]
      storage: "$ST"
      keyType: EC256
      tlsChallenge: {}
      ${2:-}
log:
  level: DEBUG
workers: 2
EOF
}
relais_yaml "$T/relais.yaml"

# served NAME: "ISSUER-CN SERIAL" of the certificate served for NAME, when
# it verifies against Pebble's root through the chain relais sends
served() {
  local out
  out=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername "$1" -CAfile "$T/root.pem" \
    -verify_return_error -verify_hostname "$1" 2>/dev/null) || return 0
  printf '%s' "$out" | openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'
}
# get NAME: status of GET https://NAME/ verified against Pebble's root
get() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$T/root.pem" \
    --resolve "$1:$WS:127.0.0.1" "https://$1:$WS/"
}
# until_nonempty SECONDS CMD...: waits until CMD prints something
until_nonempty() {
  local n=$(( $1 * 10 )) i; shift
  for ((i = 0; i < n; i++)); do [ -n "$("$@")" ] && return 0; sleep 0.1; done
  return 1
}

start_relais "$T/relais.yaml" "$WS"
ok "http-01: a.relais.test issued and served (SAN certificate)" until_nonempty 60 served a.relais.test
ok "the same certificate covers b.relais.test" until_nonempty 5 served b.relais.test
is "one certificate for the rule's two Host names" "$(served a.relais.test)" "$(served b.relais.test)"
ok "tls-alpn-01: c.relais.test issued and served" until_nonempty 60 served c.relais.test
ok "tls.domains: d.relais.test issued and served" until_nonempty 60 served d.relais.test
is "tls.domains: e.relais.test is a SAN of it" "$(served d.relais.test)" "$(served e.relais.test)"
is "HTTPS through an ACME certificate" 200 "$(get a.relais.test)"
ok "a TCP router's HostSNI name gets a certificate too" until_nonempty 60 served t.relais.test
is "TLS terminated by the TCP router with it, bytes relayed to the server" 200 "$(get t.relais.test)"
ok "Pebble's http-01 request reached relais' web entry point" \
  grep -q "validat" "$PEBBLE_DIR/pebble.log"
is "storage mode 0600" 600 "$(stat -c %a "$ST" 2>/dev/null)"
layout=$(python3 - "$ST" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
out = []
for r in ("le", "alpn"):
    sec = d.get(r, {})
    acc = sec.get("Account", {})
    mains = sorted(c["domain"]["main"] for c in sec.get("Certificates") or [])
    out.append("%s:%s:%s:%s" % (r, bool(acc.get("PrivateKey")), bool(acc.get("Registration", {}).get("uri")), ",".join(mains)))
print(" ".join(out))
EOF
)
is "acme.json in Traefik's layout (account, certificates per resolver)" \
  "le:True:True:a.relais.test,d.relais.test,t.relais.test alpn:True:True:c.relais.test" "$layout"
SA=$(served a.relais.test)

# ---- restart: served from the storage at once, no new order
kill "$RELAIS_PID"; wait "$RELAIS_PID" 2>/dev/null
mv "$T/relais.log" "$T/relais-1.log"
start_relais "$T/relais.yaml" "$WS"
ok "after a restart the stored certificate is served at once" until_nonempty 3 served a.relais.test
is "the same certificate as before" "$SA" "$(served a.relais.test)"
ok "no new order after the restart" sh -c "! grep -q 'ordering a certificate' '$T/relais.log'"

# ---- renewal by the timer, served without a restart
na=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.relais.test 2>/dev/null |
  openssl x509 -noout -enddate | sed 's/notAfter=//')
left=$(( $(date -d "$na" +%s) - $(date +%s) ))
kill "$RELAIS_PID"; wait "$RELAIS_PID" 2>/dev/null
mv "$T/relais.log" "$T/relais-2.log"
relais_yaml "$T/relais-renew.yaml" "renewBefore: $((left - 3))s
      renewCheckInterval: 1s"
start_relais "$T/relais-renew.yaml" "$WS"
renewed() { s=$(served a.relais.test); [ -n "$s" ] && [ "$s" != "$SA" ] && echo "$s"; }
ok "the timer renews a.relais.test and the new certificate is served (no restart)" \
  until_nonempty 60 renewed
ok "renewal logged" wait_log "expires soon: renewing" 1

# ---- the httpChallenge entry point changed at run time (SIGHUP): "web"
# moves to Pebble's port and so to another entry point slot; the
# challenge is answered there (the entry point is found by name)
kill "$RELAIS_PID"; wait "$RELAIS_PID" 2>/dev/null
mv "$T/relais.log" "$T/relais-3.log"
OTHER=$(free_port)
# dyn_ep [EXTRA-ROUTER-YAML]: router x on web (plain), and more
dyn_ep() {
  cat >"$T/dyn-ep.yaml" <<EOF
http:
  routers:
    x:
      rule: Host(\`x.relais.test\`)
      entryPoints: [web]
      service: s
${1:-}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
}
dyn_ep
relais_yaml "$T/relais-ep.yaml"
sed -i "s|127.0.0.1:$WEB|127.0.0.1:$OTHER|; s|$T/dyn.yaml|$T/dyn-ep.yaml|; s|$ST|$T/acme-ep.json|" \
  "$T/relais-ep.yaml"
start_relais "$T/relais-ep.yaml" "$WS"
wait_port "$OTHER"
is "web answers on its first address" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H 'Host: x.relais.test' "http://127.0.0.1:$OTHER/")"
sed -i "s|127.0.0.1:$OTHER|127.0.0.1:$WEB|" "$T/relais-ep.yaml"
kill -HUP "$RELAIS_PID"
ok "SIGHUP: web moved to Pebble's http-01 port (another slot)" wait_log "web listening on 127.0.0.1:$WEB" 10
ok "... changed, not added (the log lists it as changed)" wait_log "static configuration applied from .*changed.*web" 5
# code_on PORT: status of GET http://x.relais.test/ on 127.0.0.1:PORT (000: no answer)
code_on() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H 'Host: x.relais.test' "http://127.0.0.1:$1/"
}
for _ in $(seq 1 50); do [ "$(code_on "$OTHER")" = 000 ] && break; sleep 0.1; done
is "... and no longer answers on its first address" 000 "$(code_on "$OTHER")"
dyn_ep "    f:
      rule: Host(\`f.relais.test\`)
      entryPoints: [websecure]
      service: s
      tls: {certResolver: le}"
kill -HUP "$RELAIS_PID"
ok "a certificate ordered after the move is issued (http-01 answered on web's new slot) and served" \
  until_nonempty 60 served f.relais.test
ok "Pebble validated it on web's new address" \
  grep -q "validate w/ HTTP: http://f.relais.test:$WEB/.well-known/acme-challenge/" "$PEBBLE_DIR/pebble.log"
is "x.relais.test on web's new address" 200 "$(code_on "$WEB")"
stop_relais_clean

# ---- --check refuses bad resolver options with their key path
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$WEB"}
certificatesResolvers:
  le:
    acme:
      storage: "$T/x.json"
      keyType: EC999
      httpChallenge: {entryPoint: nosuch}
EOF
out=$("$RELAIS" --check --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); rc=$?
is "--check refuses bad resolver options" 1 "$rc"
like "keyType named" "certificatesResolvers\.le\.acme\.keyType: expected EC256" "$out"
like "httpChallenge entry point named" "certificatesResolvers\.le\.acme\.httpChallenge\.entryPoint: entry point \"nosuch\" does not exist" "$out"
t_done
