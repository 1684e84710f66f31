#!/usr/bin/env bash
# test_h2.sh — HTTP/2 towards clients (first part of issue 9), black box
# with curl, nghttp and h2load (Debian nghttp2-client) against whoami:
#
#  - h2c with prior knowledge on a plain entry point and h2 by ALPN on a
#    TLS one; HTTP/1.1 keeps working on the same ports;
#  - the server receives the same HTTP/1.1 request as for an HTTP/1.1
#    client (method, target, Host from :authority, canonical header names,
#    X-Forwarded-*), split cookies joined with "; ";
#  - bodies both ways: an upload with content-length and one without (sent
#    chunked to the server) arrive byte-exact (SHA-256), a 50 MB download
#    arrives whole, HEAD has no body, 404 when no router matches;
#  - middlewares behave as for HTTP/1.1 (stripPrefix, headers);
#  - http2.maxConcurrentStreams is announced; a head over maxHeaderCount
#    gets 431; 2000 requests over 4 connections x 10 streams all succeed;
#  - h2c by Upgrade (curl --http2, nghttp -u on http://): 101, then the
#    response over HTTP/2; with a body, or over TLS, Upgrade: h2c is
#    ignored (HTTP/1.1, not forwarded to the server).
. "$(dirname "$0")/lib.sh"

for t in nghttp h2load curl openssl; do
  command -v "$t" >/dev/null || { echo "Bail out! $t missing (Debian: nghttp2-client, curl, openssl)"; exit 1; }
done
start_whoami w1; P1=$WHOAMI_PORT
WP=$(free_port); SP=$(free_port)
pki_ca "$T" ca && pki_leaf "$T" srv ca "DNS:h2.test" || { echo "Bail out! openssl"; exit 1; }

cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    app: {rule: "HostRegexp(\`^(127[.]0[.]0[.]1|localhost)$\`)", service: w1}
    strip: {rule: "PathPrefix(\`/strip\`)", service: w1, middlewares: [strip, tag], priority: 1000}
    secure: {rule: "Host(\`h2.test\`)", service: w1, tls: {}, entryPoints: [websecure]}
  services:
    w1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
  middlewares:
    strip: {stripPrefix: {prefixes: [/strip]}}
    tag: {headers: {customResponseHeaders: {X-Tag: h2}}}
tls:
  certificates:
    - {certFile: "$T/srv.pem", keyFile: "$T/srv.key"}
EOF
cat >"$T/static.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WP"
    http2: {maxConcurrentStreams: 50}
    http: {maxHeaderCount: 40}
  websecure:
    address: "127.0.0.1:$SP"
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/dyn.yaml"}
log: {level: INFO}
workers: 2
EOF
start_relais "$T/static.yaml" "$WP"
wait_port "$SP"
wait_log "configuration [0-9]+ applied" 5

H2C=(curl -s --http2-prior-knowledge)
H2S=(curl -s --http2 --cacert "$T/ca.pem" --resolve "h2.test:$SP:127.0.0.1")

# ---- protocols
is "h2c prior knowledge: HTTP/2 200" "2 200" \
  "$("${H2C[@]}" -o /dev/null -w '%{http_version} %{http_code}' "http://127.0.0.1:$WP/")"
is "TLS: ALPN h2, HTTP/2 200" "2 200" \
  "$("${H2S[@]}" -o /dev/null -w '%{http_version} %{http_code}' "https://h2.test:$SP/")"
is "HTTP/1.1 on the same plain port" "1.1 200" \
  "$(curl -s -o /dev/null -w '%{http_version} %{http_code}' "http://127.0.0.1:$WP/")"
is "HTTP/1.1 on the same TLS port" "1.1 200" \
  "$(curl -s --http1.1 --cacert "$T/ca.pem" --resolve "h2.test:$SP:127.0.0.1" -o /dev/null \
     -w '%{http_version} %{http_code}' "https://h2.test:$SP/")"

# ---- what the server receives
B=$("${H2C[@]}" -A 'probe/1' "http://127.0.0.1:$WP/path/x?q=1&r=2")
like "request line as for HTTP/1.1" $'GET /path/x\\?q=1&r=2 HTTP/1.1' "$B"
like "Host from :authority" "Host: 127.0.0.1:$WP" "$B"
like "header names in canonical form" 'User-Agent: probe/1' "$B"
like "X-Forwarded-Proto http" 'X-Forwarded-Proto: http' "$B"
B=$("${H2S[@]}" "https://h2.test:$SP/")
like "over TLS: X-Forwarded-Proto https" 'X-Forwarded-Proto: https' "$B"
B=$(nghttp -H 'cookie: a=1' -H 'cookie: b=2' "http://127.0.0.1:$WP/c" 2>&1)
like "split cookies joined" 'Cookie: a=1; b=2' "$B"

# ---- bodies
head -c 3000000 /dev/urandom >"$T/up.bin"
SUM=$(sha256sum "$T/up.bin" | cut -c1-64)
is "upload with content-length: byte-exact" "received 3000000 bytes sha256=$SUM" \
  "$("${H2C[@]}" -X POST --data-binary @"$T/up.bin" "http://127.0.0.1:$WP/upload")"
is "upload without length (chunked to the server): byte-exact" "received 3000000 bytes sha256=$SUM" \
  "$(cat "$T/up.bin" | "${H2C[@]}" -X POST -T - "http://127.0.0.1:$WP/upload")"
is "upload over TLS: byte-exact" "received 3000000 bytes sha256=$SUM" \
  "$("${H2S[@]}" -X POST --data-binary @"$T/up.bin" "https://h2.test:$SP/upload")"
is "50 MB download: whole" "200 50000000" \
  "$("${H2C[@]}" -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$WP/data?size=50&unit=MB")"
is "HEAD: 200, no body" "200 0" \
  "$("${H2C[@]}" -I -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$WP/")"
is "no router: 404" 404 \
  "$("${H2C[@]}" -H 'Host: nothing.test' -o "$T/b404" -w '%{http_code}' "http://127.0.0.1:$WP/x" 2>/dev/null)"
# ---- middlewares
curl -s --http2-prior-knowledge -D "$T/h" -o "$T/b" "http://127.0.0.1:$WP/strip/inner"
like "stripPrefix: the server sees /inner" '^GET /inner HTTP/1.1' "$(cat "$T/b")"
is "headers middleware: X-Tag" "h2" "$(grep -i '^x-tag:' "$T/h" | tr -d '\r' | cut -d' ' -f2)"

# ---- limits and load
S=$(nghttp -v "http://127.0.0.1:$WP/" 2>&1 | grep -o 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):[0-9]*' | sed -n 2p)
is "http2.maxConcurrentStreams announced" "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):50" "$S"
ARGS=()
for i in $(seq 1 45); do ARGS+=(-H "x-h$i: v"); done
is "more fields than maxHeaderCount: 431" 431 \
  "$("${H2C[@]}" "${ARGS[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WP/")"
L=$(timeout 60 h2load -n 2000 -c 4 -m 10 -t 1 "http://127.0.0.1:$WP/" 2>&1)
like "h2load 2000 requests: all succeeded" '2000 succeeded, 0 failed, 0 errored, 0 timeout' "$L"
like "h2load: all 2xx" 'status codes: 2000 2xx' "$L"
L=$(timeout 60 h2load -n 400 -c 2 -m 20 -t 1 -d "$T/up.bin" "http://127.0.0.1:$WP/upload" 2>&1)
like "h2load 400 uploads of 3 MB: all succeeded" '400 succeeded, 0 failed' "$L"

# ---- h2c by Upgrade (RFC 7540 3.2): curl --http2 and nghttp -u on http://
# ask for it; a request with a body, or one over TLS, stays HTTP/1.1 and
# its Upgrade is not forwarded
# no_upgrade_fwd TEXT: 0 when the whoami echo TEXT has none of the fields
no_upgrade_fwd() { ! printf '%s' "$1" | grep -Eqi '^(upgrade|http2-settings|connection):'; }
V=$(curl -sv --http2 "http://127.0.0.1:$WP/up?u=1" 2>&1)
like "Upgrade: h2c answered 101 Switching Protocols" '< HTTP/1.1 101 Switching Protocols' "$V"
like "101 with Upgrade: h2c" '< Upgrade: h2c' "$V"
like "then the response over HTTP/2" '< HTTP/2 200' "$V"
like "the upgraded request reached the server as HTTP/1.1" 'GET /up\?u=1 HTTP/1.1' "$V"
B=$(curl -s --http2 "http://127.0.0.1:$WP/up")
ok "the server got no Upgrade, HTTP2-Settings or Connection" no_upgrade_fwd "$B"
is "curl --http2 on http://: version 2, status 200" "2 200" \
  "$(curl -s --http2 -o /dev/null -w '%{http_version} %{http_code}' "http://127.0.0.1:$WP/")"
is "HEAD by Upgrade: HTTP/2 200, no body" "2 200 0" \
  "$(curl -s --http2 -I -o /dev/null -w '%{http_version} %{http_code} %{size_download}' "http://127.0.0.1:$WP/")"
V=$(nghttp -uv "http://127.0.0.1:$WP/ng" 2>&1)
like "nghttp -u: upgrade succeeded" 'HTTP Upgrade success' "$V"
like "nghttp -u: stream 1 answered 200" 'recv \(stream_id=1\) :status: 200' "$V"
like "nghttp -u: the body" 'GET /ng HTTP/1.1' "$V"
B=$(curl -s --http2 -w '\n%{http_version} %{http_code}' -d 'a=1' "http://127.0.0.1:$WP/post")
like "with a body: no upgrade, HTTP/1.1 200" $'\n1.1 200$' "$B"
like "with a body: the POST reached the server" '^POST /post HTTP/1.1' "$B"
ok "with a body: no Upgrade forwarded" no_upgrade_fwd "$B"
is "with a body: the upload arrives byte-exact" "received 3000000 bytes sha256=$SUM" \
  "$(curl -s --http2 --data-binary @"$T/up.bin" "http://127.0.0.1:$WP/upload")"
B=$(curl -s --http1.1 --cacert "$T/ca.pem" --resolve "h2.test:$SP:127.0.0.1" \
  -H 'Connection: Upgrade, HTTP2-Settings' -H 'Upgrade: h2c' \
  -H 'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA' -w '\n%{http_version} %{http_code}' \
  "https://h2.test:$SP/tls")
like "over TLS: Upgrade: h2c ignored, HTTP/1.1 200" $'\n1.1 200$' "$B"
like "over TLS: the request reached the server" '^GET /tls HTTP/1.1' "$B"
ok "over TLS: no Upgrade forwarded" no_upgrade_fwd "$B"
stop_relais_clean
t_done
