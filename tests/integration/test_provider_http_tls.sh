#!/usr/bin/env bash
# The host's HTTP client over TLS, through the http provider against a real
# TLS server (https_server.py: Python's ssl, i.e. OpenSSL), one relais with
# several named http providers: tls.ca as a file and inline, the system
# store (refused: private CA), insecureSkipVerify, a name the certificate
# does not cover, mutual TLS with and without a client certificate, a
# missing CA file; --check refuses bad tls options.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
HTTPS_SERVER="$RELAIS_SRCDIR/tests/integration/https_server.py"

# ---- a private CA, a server certificate for IP 127.0.0.1 only, a client
K=$T/pki
mkdir -p "$K"
(
  set -e
  pki_ca "$K" ca
  pki_leaf "$K" srv ca IP:127.0.0.1
  pki_leaf "$K" cli ca DNS:client extendedKeyUsage=clientAuth "/CN=relais client"
) || { echo "Bail out! openssl could not make the test PKI"; cat "$K/pki.log"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
WWW=$T/www
mkdir -p "$WWW"
# doc HOST: a configuration routing HOST to w1, served as /HOST.json
doc() {
  cat >"$WWW/$1.json" <<EOF2
{"http": {"routers": {"r": {"rule": "Host(\`$1\`)", "service": "s"}},
          "services": {"s": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:$P1"}]}}}}}
EOF2
}
for h in ca inline system insecure name mtls nocert missing; do doc "$h.test"; done

SP=$(free_port)   # server certificate, no client certificate asked
MP=$(free_port)   # mutual TLS
python3 "$HTTPS_SERVER" --port "$SP" --cert "$K/srv.pem" --key "$K/srv.key" --dir "$WWW" \
  2>"$T/https.log" &
PIDS+=($!)
python3 "$HTTPS_SERVER" --port "$MP" --cert "$K/srv.pem" --key "$K/srv.key" --dir "$WWW" \
  --client-ca "$K/ca.pem" 2>"$T/https-mtls.log" &
PIDS+=($!)
wait_port "$SP" && wait_port "$MP" || { echo "Bail out! https_server.py does not start"; exit 1; }

RP=$(free_port)
INLINE_CA=$(sed 's/^/        /' "$K/ca.pem")
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  pca:
    type: http
    endpoint: "https://127.0.0.1:$SP/ca.test.json"
    pollInterval: 200ms
    tls:
      ca: "$K/ca.pem"
  pinline:
    type: http
    endpoint: "https://127.0.0.1:$SP/inline.test.json"
    pollInterval: 200ms
    tls:
      ca: |
$INLINE_CA
  psystem:
    type: http
    endpoint: "https://127.0.0.1:$SP/system.test.json"
    pollInterval: 200ms
  pinsecure:
    type: http
    endpoint: "https://127.0.0.1:$SP/insecure.test.json"
    pollInterval: 200ms
    tls:
      insecureSkipVerify: true
  pname:
    type: http
    endpoint: "https://localhost:$SP/name.test.json"
    pollInterval: 200ms
    tls:
      ca: "$K/ca.pem"
  pmtls:
    type: http
    endpoint: "https://127.0.0.1:$MP/mtls.test.json"
    pollInterval: 200ms
    tls:
      ca: "$K/ca.pem"
      cert: "$K/cli.pem"
      key: "$K/cli.key"
  pnocert:
    type: http
    endpoint: "https://127.0.0.1:$MP/nocert.test.json"
    pollInterval: 200ms
    tls:
      ca: "$K/ca.pem"
  pmissing:
    type: http
    endpoint: "https://127.0.0.1:$SP/missing.test.json"
    pollInterval: 200ms
    tls:
      ca: "$T/no-such-ca.pem"
log:
  level: DEBUG
EOF
start_relais "$T/relais.yaml" "$RP"
code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
# until_eq EXPECTED CMD...: waits (5 s at most) until CMD prints EXPECTED
until_eq() {
  local want=$1 i; shift
  for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

ok "tls.ca file: route served" until_eq 200 code ca.test
ok "tls.ca inline PEM: route served" until_eq 200 code inline.test
ok "insecureSkipVerify: route served" until_eq 200 code insecure.test
ok "mutual TLS with a client certificate: route served" until_eq 200 code mtls.test
ok "the mTLS server saw relais' request" grep -q "GET /mtls.test.json" "$T/https-mtls.log"
ok "system store: the private CA is refused (logged)" \
  wait_log "provider psystem.*TLS: certificate verify failed: unable to get local issuer certificate"
is "system store: no route" 404 "$(code system.test)"
ok "a name the certificate does not cover is refused (logged)" \
  wait_log "provider pname.*TLS: certificate verify failed: [Hh]ostname mismatch"
is "name mismatch: no route" 404 "$(code name.test)"
ok "mTLS server without a client certificate: the failure is logged" \
  wait_log "provider pnocert.*(TLS: |connection closed)"
is "mTLS without a certificate: no route" 404 "$(code nocert.test)"
ok "a missing CA file is named in the log" \
  wait_log "provider pmissing.*ca: $T/no-such-ca.pem: No such file or directory"
is "missing CA: no route" 404 "$(code missing.test)"
is "a refused server is logged once per outage" 1 \
  "$(grep -c "provider psystem.*certificate verify failed" "$T/relais.log")"
# a change on the TLS endpoint is followed (polling goes on over TLS)
sed -i "s/ca.test/ca2.test/" "$WWW/ca.test.json"
ok "a change over TLS is followed" until_eq 200 code ca2.test
is "the old route is gone" 404 "$(code ca.test)"

# --check refuses bad tls options, naming the key path
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  http:
    endpoint: "https://127.0.0.1:$SP/ca.test.json"
    tls:
      cert: "$K/cli.pem"
      insecureSkipVerfy: true
EOF
out=$("$RELAIS" --check --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); rc=$?
is "--check refuses bad tls options" 1 "$rc"
like "an unknown tls key is named" "providers\.http\.tls\.insecureSkipVerfy: unknown option" "$out"
like "cert without key is named" "providers\.http\.tls\.key: cert and key go together" "$out"
t_done
