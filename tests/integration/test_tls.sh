#!/usr/bin/env bash
# TLS termination on an entry point (openssl s_client and curl as clients,
# a private CA made here): SNI exact and wildcard, the default certificate
# (tls.stores.default, else the generated one), sniStrict, plain HTTP on
# the same port, per-router TLS options (versions, cipher suites, curves,
# ALPN), TLS 1.0/1.1 off by default, the five clientAuth types with no,
# good and untrusted client certificates, 421 for a Host served with other
# options, the entry point redirection, session resumption across worker
# threads, a certificate replaced on reload while a connection stays open,
# a broken certificate entry reported with its key path.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "Bail out! openssl not installed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }

K=$T/pki
mkdir -p "$K"
leaf() { pki_leaf "$K" "$1" "$3" "$2" "${4:-}"; }
(
  set -e
  pki_ca "$K" ca
  pki_ca "$K" otherca
  leaf a.test DNS:a.test ca
  leaf wild 'DNS:*.wild.test' ca
  leaf b.test DNS:b.test ca
  leaf default.test DNS:default.test ca
  leaf inline.test DNS:inline.test ca
  leaf client 'DNS:client' ca 'extendedKeyUsage=clientAuth'
  leaf stranger 'DNS:stranger' otherca 'extendedKeyUsage=clientAuth'
  cp "$K/a.test.pem" "$K/a-cur.pem"; cp "$K/a.test.key" "$K/a-cur.key"
  leaf a2.test DNS:a.test ca   # a second certificate for a.test (reload)
) || { echo "Bail out! openssl could not make the test PKI"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
WS=$(free_port); WEB=$(free_port); TO=$(free_port)
DYN=$T/dyn.yaml
# write_dyn [EXTRA-DEFAULT-OPTIONS]: the dynamic configuration
write_dyn() {
  local icert ikey
  icert=$(sed 's/^/        /' "$K/inline.test.pem")
  ikey=$(sed 's/^/        /' "$K/inline.test.key")
  cat >"$DYN.tmp" <<EOF
http:
  routers:
    a:
      rule: Host(\`a.test\`) || HostRegexp(\`^[a-z0-9]+\\.wild\\.test$\`)
      service: s
      tls: {}
    b:
      rule: Host(\`b.test\`)
      service: s
      tls:
        options: modern
    c12:
      rule: Host(\`c12.test\`)
      service: s
      tls: {options: c12}
    curve:
      rule: Host(\`curve.test\`)
      service: s
      tls: {options: p384}
    old:
      rule: Host(\`old.test\`)
      service: s
      tls: {options: tls11}
    m1: {rule: Host(\`m1.test\`), service: s, tls: {options: m1}}
    m2: {rule: Host(\`m2.test\`), service: s, tls: {options: m2}}
    m3: {rule: Host(\`m3.test\`), service: s, tls: {options: m3}}
    m4: {rule: Host(\`m4.test\`), service: s, tls: {options: m4}}
    m5: {rule: Host(\`m5.test\`), service: s, tls: {options: m5}}
    epdefault:
      rule: Host(\`ep.test\`)
      entryPoints: [tlsonly]
      service: s
    badopts:
      rule: Host(\`bad.test\`)
      service: s
      tls: {options: nosuch}
    plain:
      rule: PathPrefix(\`/\`)
      service: s
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
tls:
  certificates:
    - {certFile: "$K/a-cur.pem", keyFile: "$K/a-cur.key"}
    - {certFile: "$K/wild.pem", keyFile: "$K/wild.key"}
    - {certFile: "$K/b.test.pem", keyFile: "$K/b.test.key"}
    - {certFile: "$K/missing.pem", keyFile: "$K/missing.key"}
    - certFile: |
$icert
      keyFile: |
$ikey
  stores:
    default:
      defaultCertificate: {certFile: "$K/default.test.pem", keyFile: "$K/default.test.key"}
  options:
    default:
      minVersion: VersionTLS12
      ${1:-}
    modern: {minVersion: VersionTLS13}
    c12:
      maxVersion: VersionTLS12
      cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]
    p384: {curvePreferences: [CurveP384]}
    tls11: {minVersion: VersionTLS11}
    m1: {clientAuth: {caFiles: ["$K/ca.pem"], clientAuthType: NoClientCert}}
    m2: {clientAuth: {caFiles: ["$K/ca.pem"], clientAuthType: RequestClientCert}}
    m3: {clientAuth: {caFiles: ["$K/ca.pem"], clientAuthType: RequireAnyClientCert}}
    m4: {clientAuth: {caFiles: ["$K/ca.pem"], clientAuthType: VerifyClientCertIfGiven}}
    m5: {clientAuth: {caFiles: ["$K/ca.pem"], clientAuthType: RequireAndVerifyClientCert}}
EOF
  mv "$DYN.tmp" "$DYN"
}
write_dyn
cat >"$T/relais.yaml" <<EOF
entryPoints:
  websecure:
    address: "127.0.0.1:$WS"
  tlsonly:
    address: "127.0.0.1:$TO"
    http:
      tls:
        options: modern
  web:
    address: "127.0.0.1:$WEB"
    http:
      redirections:
        entryPoint: {to: websecure, scheme: https}
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$DYN"
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$WS"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

# subject NAME [ARGS...]: the CN of the certificate served for SNI NAME
subject() {
  local n=$1; shift
  if [ -n "$n" ]; then set -- -servername "$n" "$@"; fi
  echo | openssl s_client -connect "127.0.0.1:$WS" "$@" 2>/dev/null |
    sed -n 's/^subject=.*CN *= *//p'
}
# hs NAME [ARGS...]: "ok" when a TLS handshake (and one request) succeeds
hs() {
  local n=$1; shift
  if [ -n "$n" ]; then set -- -servername "$n" "$@"; fi
  if printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "${n:-x.test}" |
    openssl s_client -connect "127.0.0.1:$WS" -ign_eof "$@" 2>/dev/null |
    grep -q '^HTTP/1.1 200'; then echo ok; else echo fail; fi
}
# get NAME [CURL-ARGS...]: status of GET https://NAME/ (trusting our CA)
get() {
  local n=$1; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$K/ca.pem" \
    --resolve "$n:$WS:127.0.0.1" "$@" "https://$n:$WS/"
}

# ---- certificate selection
is "exact SNI: its certificate" a.test "$(subject a.test)"
is "wildcard SNI: the wildcard certificate (CN wild, SAN *.wild.test)" wild "$(subject x.wild.test)"
is "two labels under a wildcard: not covered (default certificate)" default.test \
  "$(subject y.x.wild.test)"
is "unknown SNI: tls.stores.default's certificate" default.test "$(subject nobody.test)"
is "a certificate given inline (PEM text in certFile/keyFile)" inline.test "$(subject inline.test)"
is "no SNI at all: the default certificate" default.test "$(subject '' -noservername)"
is "HTTPS request with a verified chain" 200 "$(get a.test)"
is "HTTPS request through the wildcard" 200 "$(get x.wild.test)"
xfp=$(curl -s --cacert "$K/ca.pem" --resolve "a.test:$WS:127.0.0.1" "https://a.test:$WS/" |
  tr -d '\r' | sed -n 's/^X-Forwarded-Proto: //p')
is "X-Forwarded-Proto: https" https "$xfp"
# ---- plain HTTP on the same port, TLS routers only on TLS
is "plain HTTP on the TLS port: the plain router" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: zz.test' "http://127.0.0.1:$WS/")"
is "a TLS router is not served to plain HTTP (plain router catches it)" plain \
  "$(curl -s -H 'Host: a.test' "http://127.0.0.1:$WS/" >/dev/null && echo plain)"
# ---- options per router
is "modern (TLS 1.3 only): TLS 1.2 client refused" 000 "$(get b.test --tls-max 1.2)"
is "modern: TLS 1.3 client served" 200 "$(get b.test --tlsv1.3)"
is "default options: TLS 1.2 client served" 200 "$(get a.test --tls-max 1.2)"
is "TLS 1.1 refused by default" fail \
  "$(hs a.test -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')"
is "TLS 1.1 accepted where minVersion says so" ok \
  "$(hs old.test -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')"
cs=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername c12.test 2>/dev/null |
  sed -n 's/^ *Cipher *: *//p' | head -1)
is "cipherSuites: the configured suite is used" ECDHE-ECDSA-AES256-GCM-SHA384 "$cs"
is "cipherSuites: a client without it is refused" fail \
  "$(hs c12.test -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)"
is "curvePreferences P-384: a P-384 client is served" ok "$(hs curve.test -groups P-384)"
is "curvePreferences P-384: an X25519-only client is refused" fail "$(hs curve.test -groups X25519)"
alpn=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test -alpn h2,http/1.1 \
  2>/dev/null | sed -n 's/^ALPN protocol: //p')
is "ALPN: h2 chosen first (Traefik's default order)" h2 "$alpn"
alpn=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test -alpn http/1.1 \
  2>/dev/null | sed -n 's/^ALPN protocol: //p')
is "ALPN: http/1.1 when the client offers only that" http/1.1 "$alpn"
# ---- client authentication: NoClientCert RequestClientCert RequireAnyClientCert
#      VerifyClientCertIfGiven RequireAndVerifyClientCert
GOOD=(--cert "$K/client.pem" --key "$K/client.key")
BAD=(--cert "$K/stranger.pem" --key "$K/stranger.key")
expect=("200 200 200" "200 200 200" "000 200 200" "200 200 000" "000 200 000")
for i in 1 2 3 4 5; do
  # (-k: the server certificate for m*.test is the default one)
  got="$(get m$i.test -k) $(get m$i.test -k "${GOOD[@]}") $(get m$i.test -k "${BAD[@]}")"
  is "clientAuth m$i (no cert, trusted cert, untrusted cert)" "${expect[$((i - 1))]}" "$got"
done
# ---- 421: SNI a.test (default options), Host b.test (options modern)
is "Host served with other TLS options than the SNI: 421" 421 \
  "$(get a.test -H 'Host: b.test')"
is "Host with the same options as the SNI: served" 200 "$(get a.test -H 'Host: x.wild.test')"
# ---- a router naming unknown options is disabled, named in the log
ok "unknown TLS options: router disabled with its key path" \
  wait_log 'router badopts@file disabled: http.routers.badopts@file.tls.options: TLS options "nosuch@file" do not exist'
is "its host is not served" 404 "$(get bad.test -k)"
ok "a missing certificate file is reported with its key path" \
  wait_log "dyn.yaml: tls.certificates\[3\].certFile: $K/missing.pem: No such file or directory"
# ---- entryPoints.X.http.tls: routers without tls become TLS routers there
is "entry point http.tls: a router without tls served over TLS" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -k --resolve "ep.test:$TO:127.0.0.1" "https://ep.test:$TO/")"
is "entry point http.tls options (modern): TLS 1.2 refused" 000 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -k --tls-max 1.2 --resolve "ep.test:$TO:127.0.0.1" "https://ep.test:$TO/")"
is "entry point http.tls: no plain router there" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: ep.test' "http://127.0.0.1:$TO/")"
# ---- entry point redirection
loc=$(curl -s -D- -o /dev/null -H 'Host: a.test' "http://127.0.0.1:$WEB/p/q?x=1" | tr -d '\r')
like "redirection: 301" "^HTTP/1.1 301" "$loc"
like "redirection: Location on the websecure port" "Location: https://a.test:$WS/p/q\?x=1" "$loc"
is "redirection of a POST: 308" 308 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x -H 'Host: a.test' "http://127.0.0.1:$WEB/")"
# ---- session resumption across worker threads (shared ticket keys)
echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test -tls1_2 \
  -sess_out "$T/sess" >/dev/null 2>&1
reused=0
for i in 1 2 3 4 5 6 7 8; do
  echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test -tls1_2 \
    -sess_in "$T/sess" 2>/dev/null | grep -q '^Reused' && reused=$((reused + 1))
done
is "TLS 1.2 tickets resume on every connection (8 of 8, two workers)" 8 "$reused"
# ---- sniStrict (reload): unknown names and no SNI refused, known served
write_dyn "sniStrict: true"
ok "sniStrict reload applied" wait_log "configuration 3 applied"
is "sniStrict: unknown name refused" fail "$(hs nobody.test)"
is "sniStrict: no SNI refused" fail "$(hs '' -noservername)"
is "sniStrict: a known name served" ok "$(hs a.test)"
# ---- certificate replaced on disk + reload, an open connection keeps working
python3 - "$WS" "$K/ca.pem" >"$T/keep.out" 2>&1 <<'PY' &
import http.client, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
c._tunnel_host = None
c.sock = ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", port)),
                         server_hostname="a.test")
codes = []
for i in range(30):
    c.request("GET", "/", headers={"Host": "a.test"})
    r = c.getresponse(); r.read(); codes.append(r.status)
    time.sleep(0.1)
print("codes", " ".join(map(str, sorted(set(codes)))), "n", len(codes))
PY
KEEP=$!
sleep 0.5
before=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test 2>/dev/null |
  openssl x509 -noout -serial)
cp "$K/a2.test.pem" "$K/a-cur.pem.new"; cp "$K/a2.test.key" "$K/a-cur.key.new"
mv "$K/a-cur.pem.new" "$K/a-cur.pem"; mv "$K/a-cur.key.new" "$K/a-cur.key"
write_dyn "sniStrict: false"
ok "reload with the replaced certificate applied" wait_log "configuration 4 applied"
after=$(echo | openssl s_client -connect "127.0.0.1:$WS" -servername a.test 2>/dev/null |
  openssl x509 -noout -serial)
expected=$(openssl x509 -noout -serial -in "$K/a2.test.pem")
is "new handshakes get the new certificate" "$expected" "$after"
ok "(and it differs from the old one)" test "$before" != "$after"
wait "$KEEP"
is "the connection open across the reload kept working (30 requests, all 200)" \
  "codes 200 n 30" "$(cat "$T/keep.out")"
t_done
