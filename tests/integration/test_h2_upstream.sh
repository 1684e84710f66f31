#!/usr/bin/env bash
# test_h2_upstream.sh — HTTP/2 towards servers (issue 9), black box:
# relais in front of real HTTP/2 servers, nginx (h2c with prior knowledge
# and h2 over TLS, in front of whoami) and nghttpd (response trailers).
#
#  - h2c:// servers get HTTP/2 with prior knowledge: from HTTP/1.1 and
#    HTTP/2 clients alike, the same request (method, target, Host,
#    X-Forwarded-*, TE: trailers kept); https:// servers get h2 by ALPN
#    and HTTP/1.1 when the serversTransport says disableHTTP2;
#  - bodies both ways byte-exact (uploads with a length, chunked, and an
#    HTTP/2 upload of unknown length; a 50 MB download; HEAD); a slow
#    client holds the server (flow control all the way: the server has
#    sent a fraction of a 200 MiB body when the client gives up);
#  - one connection per worker carries every request (multiplexed: 2000
#    requests, 40 at once, over one TCP connection to the server);
#  - response trailers reach HTTP/2 clients after the body, and chunked
#    HTTP/1.1 clients after the last chunk;
#  - responseHeaderTimeout is 504 on an HTTP/2 stream; a dead server is
#    502 then served again once it is back; a server's graceful GOAWAY
#    (nginx reload) loses no request; an Upgrade to an h2c:// server is
#    502.
. "$(dirname "$0")/lib.sh"

for t in nginx nghttpd nghttp h2load curl openssl; do
  command -v "$t" >/dev/null || {
    echo "Bail out! $t missing (Debian: nginx, nghttp2-server, nghttp2-client, curl)"; exit 1; }
done
start_whoami w1; WP=$WHOAMI_PORT
NA=$(free_port); NB=$(free_port); ND=$(free_port); RP=$(free_port)
pki_ca "$T" ca && pki_leaf "$T" srv ca "DNS:up.test" || { echo "Bail out! openssl"; exit 1; }
mkdir -p "$T/nginx" "$T/www"
printf 'static file\n' >"$T/www/f.txt"

# nginx: h2c on NA, h2 over TLS on NB, both in front of whoami; the
# protocol it received and the connection number come back as headers
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $T/nginx/error.log;
pid $T/nginx/nginx.pid;
events { worker_connections 512; }
http {
  log_format c '\$connection \$server_protocol \$request \$body_bytes_sent';
  access_log $T/nginx/access.log c;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  http2_max_concurrent_streams 128;
  keepalive_requests 100000;
  upstream who { server 127.0.0.1:$WP; keepalive 8; }
  server {
    listen 127.0.0.1:$NA http2;
    listen 127.0.0.1:$NB ssl http2;
    ssl_certificate $T/srv.pem;
    ssl_certificate_key $T/srv.key;
    client_max_body_size 100m;
    location / {
      proxy_pass http://who;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      add_header X-Upstream-Proto \$server_protocol always;
      add_header X-Te "\$http_te" always;
      add_trailer X-Trailer "end" always;
    }
  }
}
EOF
nginx -c "$T/nginx.conf" -p "$T/nginx" >"$T/nginx/out" 2>&1 &
NGINX_PID=$!; PIDS+=($NGINX_PID)
nghttpd --no-tls -d "$T/www" --trailer "grpc-status: 0" --trailer "x-t: 1" "$ND" \
  >"$T/nghttpd.log" 2>&1 &
PIDS+=($!)
wait_port "$NA" && wait_port "$NB" && wait_port "$ND" || { echo "Bail out! servers"; exit 1; }

cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    h2c: {rule: "PathPrefix(\`/\`)", service: h2c}
    tls: {rule: "PathPrefix(\`/tls\`)", service: tls, middlewares: [strip]}
    h1: {rule: "PathPrefix(\`/h1\`)", service: h1, middlewares: [strip]}
    trl: {rule: "PathPrefix(\`/f.txt\`)", service: nghttpd}
    slow: {rule: "PathPrefix(\`/slow\`)", service: slow, middlewares: [strip]}
  middlewares:
    strip: {stripPrefix: {prefixes: [/tls, /h1, /slow]}}
  services:
    h2c: {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$NA"}]}}
    slow: {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$NA"}], serversTransport: quick}}
    tls: {loadBalancer: {servers: [{url: "https://127.0.0.1:$NB"}], serversTransport: ca}}
    h1: {loadBalancer: {servers: [{url: "https://127.0.0.1:$NB"}], serversTransport: h1}}
    nghttpd: {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$ND"}]}}
  serversTransports:
    ca: {serverName: up.test, rootCAs: ["$T/ca.pem"]}
    h1: {serverName: up.test, rootCAs: ["$T/ca.pem"], disableHTTP2: true}
    quick: {forwardingTimeouts: {responseHeaderTimeout: 500ms}}
EOF
static_config "$T/static.yaml" "$RP" "$T/dyn.yaml"
sed -i 's/^workers: 2/workers: 1/' "$T/static.yaml"
start_relais "$T/static.yaml" "$RP" || { echo "Bail out! relais"; exit 1; }
U=http://127.0.0.1:$RP

# --- the request the server receives, from both client versions
out=$(curl -s -D "$T/h" "$U/who/a?b=1" -H "TE: trailers" -H "X-Mine: 1")
is "HTTP/1.1 client via h2c: 200" "200" "$(awk 'NR==1{print $2}' "$T/h")"
is "nginx got HTTP/2" "HTTP/2.0" "$(grep -i '^X-Upstream-Proto' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
is "TE: trailers forwarded" "trailers" "$(grep -i '^X-Te' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
# (nginx passes HTTP/2's lowercase names on)
like "target, Host and headers at the server" \
  "GET /who/a\\?b=1 HTTP/1.1.*Host: 127.0.0.1:$RP.*x-mine: 1.*x-forwarded-for: 127.0.0.1" \
  "$(printf '%s' "$out" | tr '\n' ' ')"
out=$(curl -s --http2-prior-knowledge -D "$T/h" "$U/who/c")
is "HTTP/2 client via h2c: 200" "200" "$(awk 'NR==1{print $2}' "$T/h")"
like "HTTP/2 client's request at the server" "GET /who/c HTTP/1.1.*Host: 127.0.0.1:$RP" \
  "$(printf '%s' "$out" | tr '\n' ' ')"
is "no TE when the client sent none" "" "$(grep -i '^X-Te' "$T/h" | tr -d '\r' | cut -d' ' -f2)"

# --- bodies
head -c 3000000 /dev/urandom >"$T/up.bin"
want="received 3000000 bytes sha256=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)"
is "upload with Content-Length, byte-exact" "$want" \
  "$(curl -s --data-binary @"$T/up.bin" "$U/upload")"
is "chunked upload, byte-exact" "$want" \
  "$(curl -s -H 'Transfer-Encoding: chunked' --data-binary @"$T/up.bin" "$U/upload")"
is "HTTP/2 upload of unknown length, byte-exact" "$want" \
  "$(curl -s --http2-prior-knowledge -T - -X POST "$U/upload" <"$T/up.bin")"
is "50 MiB download over HTTP/2 to an HTTP/1.1 client" "52428800" \
  "$(curl -s "$U/data?size=50&unit=MiB" | wc -c)"
is "50 MiB download to an HTTP/2 client" "52428800" \
  "$(curl -s --http2-prior-knowledge "$U/data?size=50&unit=MiB" | wc -c)"
hd=$(curl -s -I "$U/data?size=10" | tr -d '\r')
like "HEAD: Content-Length 10" "Content-Length: 10" "$hd"
is "HEAD: no body" "0" "$(curl -s -X HEAD --max-time 3 "$U/data?size=10" 2>/dev/null | wc -c)"

# --- trailers: nghttpd's after the body
tr2=$(nghttp -v "$U/f.txt" 2>&1)
like "HTTP/2 client: trailers after the body" \
  "recv DATA frame <length=12.*grpc-status: 0.*x-t: 1.*recv HEADERS frame <length=[0-9]+, flags=0x05" \
  "$(printf '%s' "$tr2" | tr '\n' ' ')"
raw=$(curl -s --raw "$U/data?size=5&chunked=1" | tr -d '\r' | tr '\n' '|')
is "chunked HTTP/1.1 client: trailer after the last chunk" "5|xxxxx|0|X-Trailer: end||" "$raw"

# --- multiplexing: one connection carries everything
: >"$T/nginx/access.log"
h2=$(h2load -n 2000 -c 4 -m 10 "$U/bench" 2>&1)
like "h2load: 2000 requests, all 2xx" "status codes: 2000 2xx" "$h2"
sleep 0.3
is "one TCP connection to nginx for 2000 requests" "1" \
  "$(awk '{print $1}' "$T/nginx/access.log" | sort -u | wc -l)"
is "nginx saw them all over HTTP/2" "2000" "$(grep -c 'HTTP/2.0 GET /bench ' "$T/nginx/access.log")"

# --- back-pressure to the server: a client reading 1 MB/s of a 200 MiB
# body for 2 s holds the server's stream.  HTTP/1.1 client: nginx (which
# streams whoami's bytes, proxy_buffering off) has sent a fraction of the
# body when the client gives up.  HTTP/2 client: curl's own window takes
# up to 32 MiB of it first, so what is checked is that relais holds little
# (its RSS during the slow read).
rss() { awk '/^VmRSS/ {print $2}' "/proc/$RELAIS_PID/status"; }
base=$(rss)
for v in "--http1.1" "--http2-prior-knowledge"; do
  : >"$T/nginx/access.log"
  curl -s $v --limit-rate 1M --max-time 2 "$U/data?size=200&unit=MiB&bp=$v" >"$T/bp.out" &
  cpid=$!
  sleep 1.5; during=$(rss)
  wait $cpid
  got=$(wc -c <"$T/bp.out")
  sleep 0.5
  sent=$(awk '/bp=/{print $NF}' "$T/nginx/access.log" | tail -1)
  ok "back-pressure ($v): client read $got bytes, relais RSS $base -> $during kB" \
    test "$got" -lt 20000000 -a "$during" -lt $((base + 24576))
  [ "$v" = --http1.1 ] &&
    ok "back-pressure ($v): the server sent $sent bytes of 209715200" \
      test -n "$sent" -a "${sent:-0}" -lt 40000000
done

# --- TLS: h2 by ALPN; HTTP/1.1 with disableHTTP2
curl -s -D "$T/h" -o /dev/null "$U/tls/x"
is "https server: h2 by ALPN" "HTTP/2.0" \
  "$(grep -i '^X-Upstream-Proto' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
curl -s -D "$T/h" -o /dev/null "$U/h1/x"
is "https server with disableHTTP2: HTTP/1.1" "HTTP/1.1" \
  "$(grep -i '^X-Upstream-Proto' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
is "TLS h2 upload byte-exact" "$want" "$(curl -s --data-binary @"$T/up.bin" "$U/tls/upload")"

# --- timeouts and failures
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/slow/x?wait=3s")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "responseHeaderTimeout on an HTTP/2 stream: 504" "504" "$code"
ok "... after about 500 ms (took $ms ms)" test "$ms" -ge 400 -a "$ms" -lt 2500
is "the connection still serves after a stream timed out" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$U/slow/x")"
is "Upgrade to an h2c:// server: 502" "502" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' "$U/echo")"

# nginx reload: GOAWAY to the old connection; nothing is lost
kill -HUP "$NGINX_PID"
fails=0
for i in $(seq 1 40); do
  c=$(curl -s -o /dev/null -w '%{http_code}' "$U/bench")
  [ "$c" = 200 ] || fails=$((fails + 1))
  sleep 0.02
done
is "40 requests across an nginx reload (GOAWAY): all 200" "0" "$fails"

# the server dies, then comes back
kill -TERM "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$NA") 2>/dev/null || break; sleep 0.1; done
is "server gone: 502" "502" "$(curl -s -o /dev/null -w '%{http_code}' "$U/bench")"
nginx -c "$T/nginx.conf" -p "$T/nginx" >"$T/nginx/out2" 2>&1 &
PIDS+=($!)
wait_port "$NA"
is "server back: 200" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$U/bench")"

stop_relais_clean
t_done
