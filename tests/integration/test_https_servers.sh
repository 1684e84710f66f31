#!/usr/bin/env bash
# https:// servers and http.serversTransports, against real TLS servers
# (Python's ssl, i.e. OpenSSL): rootCAs as a file and as PEM content, the
# system store (refused: private CA), insecureSkipVerify, serverName (SNI
# and the verified name), mutual TLS with and without certificates,
# keep-alive reuse of TLS connections (counted at the server), two
# transports to one server never sharing a connection, a bad transport
# disabling the service that uses it (with the key path), dialTimeout
# bounding a stalled TLS handshake and responseHeaderTimeout per transport.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

# ---- a private CA, a server certificate (backend.test, 127.0.0.1), a client
K=$T/pki
mkdir -p "$K"
(
  set -e
  pki_ca "$K" ca
  pki_leaf "$K" srv ca DNS:backend.test,IP:127.0.0.1
  pki_leaf "$K" cli ca DNS:client extendedKeyUsage=clientAuth "/CN=relais client"
) || { echo "Bail out! openssl could not make the test PKI"; cat "$K/pki.log"; exit 1; }

# ---- an HTTP/1.1 keep-alive TLS server that logs each connection ("CONN"),
# the SNI it got ("SNI name") and each request ("GET /path")
cat >"$T/srv.py" <<'EOF'
import http.server, ssl, sys

def log(s):
    sys.stderr.write(s + "\n")
    sys.stderr.flush()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        log("CONN")

    def do_GET(self):
        body = ("hello %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        log("%s %s" % (self.command, self.path))

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.sni_callback = lambda sock, name, c: log("SNI %s" % name)
if len(sys.argv) > 4:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(sys.argv[4])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.daemon_threads = True
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
# a server that accepts TCP (backlog) and never answers the ClientHello
cat >"$T/silent.py" <<'EOF'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
time.sleep(3600)
EOF

SP=$(free_port)   # server certificate, no client certificate asked
MP=$(free_port)   # mutual TLS
XP=$(free_port)   # silent
python3 "$T/srv.py" "$SP" "$K/srv.pem" "$K/srv.key" 2>"$T/s.log" &
PIDS+=($!)
python3 "$T/srv.py" "$MP" "$K/srv.pem" "$K/srv.key" "$K/ca.pem" 2>"$T/m.log" &
PIDS+=($!)
python3 "$T/silent.py" "$XP" &
PIDS+=($!)
start_whoami w1; P1=$WHOAMI_PORT
wait_port "$SP" && wait_port "$MP" && wait_port "$XP" ||
  { echo "Bail out! the test servers do not start"; exit 1; }

INLINE_CA=$(sed 's/^/          /' "$K/ca.pem")
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
EOF
for n in ca ca2 system insecure snok snbad mtls nocert missing slowdial slowresp plain hcmtls hcsys; do
  printf '    %s:\n      rule: "Host(`%s.test`)"\n      service: %s\n' "$n" "$n" "$n" >>"$T/dyn.yaml"
done
cat >>"$T/dyn.yaml" <<EOF
  serversTransports:
    withca:
      rootCAs: ["$K/ca.pem"]
    withca2:
      rootCAs:
        - |
$INLINE_CA
    insecure:
      insecureSkipVerify: true
    snok:
      serverName: backend.test
      rootCAs: ["$K/ca.pem"]
    snbad:
      serverName: wrong.test
      rootCAs: ["$K/ca.pem"]
    mtls:
      rootCAs: ["$K/ca.pem"]
      certificates:
        - certFile: "$K/cli.pem"
          keyFile: "$K/cli.key"
      disableHTTP2: true
    missing:
      rootCAs: ["$K/ca.pem", "$T/no-such-ca.pem"]
    slowdial:
      rootCAs: ["$K/ca.pem"]
      forwardingTimeouts:
        dialTimeout: 300ms
    slowresp:
      forwardingTimeouts:
        responseHeaderTimeout: 300ms
  services:
    ca: {loadBalancer: {serversTransport: withca, servers: [{url: "https://127.0.0.1:$SP"}]}}
    ca2: {loadBalancer: {serversTransport: withca2, servers: [{url: "https://127.0.0.1:$SP/"}]}}
    system: {loadBalancer: {servers: [{url: "https://127.0.0.1:$SP"}]}}
    insecure: {loadBalancer: {serversTransport: insecure, servers: [{url: "https://127.0.0.1:$SP"}]}}
    snok: {loadBalancer: {serversTransport: snok@file, servers: [{url: "https://127.0.0.1:$SP"}]}}
    snbad: {loadBalancer: {serversTransport: snbad, servers: [{url: "https://127.0.0.1:$SP"}]}}
    mtls: {loadBalancer: {serversTransport: mtls, servers: [{url: "https://127.0.0.1:$MP"}]}}
    nocert: {loadBalancer: {serversTransport: withca, servers: [{url: "https://127.0.0.1:$MP"}]}}
    missing: {loadBalancer: {serversTransport: missing, servers: [{url: "https://127.0.0.1:$SP"}]}}
    slowdial: {loadBalancer: {serversTransport: slowdial, servers: [{url: "https://127.0.0.1:$XP"}]}}
    slowresp: {loadBalancer: {serversTransport: slowresp, servers: [{url: "http://127.0.0.1:$P1"}]}}
    plain: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
    hcmtls:
      loadBalancer:
        serversTransport: mtls
        healthCheck: {path: /hc, interval: 200ms, timeout: 2s}
        servers: [{url: "https://127.0.0.1:$MP"}]
    hcsys:
      loadBalancer:
        healthCheck: {path: /hc, interval: 200ms, timeout: 2s}
        servers: [{url: "https://127.0.0.1:$SP"}]
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
log:
  level: DEBUG
workers: 1
serversTransport:
  forwardingTimeouts:
    responseHeaderTimeout: 5s
EOF
start_relais "$T/relais.yaml" "$RP"
get() { curl -s --max-time 5 -H "Host: $1.test" "http://127.0.0.1:$RP${2:-/}"; }
code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $1.test" "http://127.0.0.1:$RP${2:-/}"; }
conns() { grep -c '^CONN' "$T/$1.log"; }
until_eq() {
  local want=$1 i; shift
  for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

# ---- rootCAs, keep-alive, pools per transport
ok "rootCAs file: 200" until_eq 200 code ca /a
is "rootCAs file: the server's bytes" "hello /b" "$(get ca /b)"
is "one TLS connection so far" 1 "$(conns s)"
for i in 1 2 3 4 5; do get ca /k$i >/dev/null; done
is "5 more requests reuse it (keep-alive over TLS)" 1 "$(conns s)"
is "the server saw them all" 7 "$(grep -c '^GET /' "$T/s.log")"
is "rootCAs PEM content (second transport): the bytes" "hello /c" "$(get ca2 /c)"
is "a second transport to the same server opens its own connection" 2 "$(conns s)"
for i in 1 2 3; do get ca2 /k$i >/dev/null; get ca /k$i >/dev/null; done
is "... and each transport keeps reusing its own" 2 "$(conns s)"
is "SNI for an IP literal: none sent" 0 "$(grep -c '^SNI .*test' "$T/s.log")"

# ---- verification
is "system store: private CA refused (502)" 502 "$(code system)"
ok "system store: the reason is logged" \
  wait_log "https://127.0.0.1:$SP: TLS handshake failed: .*unable to get local issuer certificate"
is "insecureSkipVerify: the bytes" "hello /i" "$(get insecure /i)"
is "serverName matching the certificate: the bytes" "hello /n" "$(get snok /n)"
ok "serverName is sent as SNI" grep -q '^SNI backend.test$' "$T/s.log"
is "serverName not in the certificate: 502" 502 "$(code snbad)"
ok "serverName mismatch: the reason is logged" \
  wait_log "TLS handshake failed: .*([Hh]ostname mismatch|certificate verify failed)"

# ---- mutual TLS
is "mutual TLS with a client certificate: the bytes" "hello /m" "$(get mtls /m)"
is "mutual TLS without a certificate: 502" 502 "$(code nocert)"
ok "no certificate: the failure is logged" \
  wait_log "https://127.0.0.1:$MP: (TLS (handshake )?failed: |connection closed before the response head)"

# ---- a bad transport disables its service, named by key path
ok "missing rootCAs file: the service is disabled with the key path" \
  wait_log "service missing@file disabled: .*http\.serversTransports\.missing@file\.rootCAs\[1\]: $T/no-such-ca.pem: No such file or directory"
ok "... and the transport itself is reported" \
  wait_log "serversTransport missing@file disabled: http\.serversTransports\.missing@file\.rootCAs\[1\]"
like "the disabled service does not answer 200" '^(404|503)$' "$(code missing)"
is "the other services still serve" "hello /z" "$(get ca /z)"

# ---- timeouts per transport
t0=$(date +%s%N)
c=$(code slowdial)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "dialTimeout 300ms bounds a stalled TLS handshake: 504" 504 "$c"
ok "... within 2 s (took ${ms} ms)" test "$ms" -lt 2000
ok "... logged as a handshake timeout" wait_log "https://127.0.0.1:$XP: TLS handshake timed out"
is "responseHeaderTimeout 300ms: a 1 s server is a 504" 504 "$(code slowresp '/?wait=1s')"
is "the default transport (5 s) waits for it: 200" 200 "$(code plain '/?wait=1s')"
is "slowresp transport, fast answer: 200" 200 "$(code slowresp /)"

# ---- a changed transport gets new connections; an unchanged one keeps them
get insecure /warm >/dev/null
before=$(conns s)
sed -i 's/      insecureSkipVerify: true/      insecureSkipVerify: true\n      maxIdleConnsPerHost: 10/' "$T/dyn.yaml"
inc() { get insecure /again >/dev/null; conns s; }
ok "changed transport after a reload: a new connection" until_eq $((before + 1)) inc
get ca /again >/dev/null
is "unchanged transport after the reload: its connection is reused" $((before + 1)) "$(conns s)"

# ---- health checks probe https servers with the service's transport
# (rootCAs and the client certificate the mTLS server demands), and a
# service without one is refused by the system store
ok "probes of hcmtls reach the mTLS server" until_eq 1 bash -c "grep -c '^GET /hc' '$T/m.log' | awk '{print (\$1 >= 2)}'"
is "hcmtls serves while probed" "hello /x" "$(get hcmtls /x)"
ok "hcmtls is never marked down" bash -c "! grep -q 'service hcmtls@file: server https://127.0.0.1:$MP is down' '$T/relais.log'"
ok "hcsys: the probe is refused by the system store" \
  wait_log "service hcsys@file: server https://127.0.0.1:$SP is down.*certificate verify failed" 3
is "hcsys: no server left: 503" "503" "$(code hcsys)"

# --check refuses nothing here (dynamic errors are local) and the process lives
ok "relais is still running" kill -0 "$RELAIS_PID"
t_done
