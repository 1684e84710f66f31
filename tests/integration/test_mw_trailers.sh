#!/usr/bin/env bash
# ABI 1.5 through the real binary with the test plugin tp_body (testBody):
#
#  - request body filters: two nested filters transform a body in the
#    router's order (the outer one first); the server gets the result
#    chunked, without Content-Length, byte-exact (SHA-256 at whoami), for
#    an HTTP/1.1 client with a length, a chunked one and an HTTP/2 one; a
#    request without a body is forwarded untouched;
#  - response trailers: a middleware adds one and removes one of an
#    HTTP/2 server's (nghttpd) trailers; an HTTP/2 client gets the result
#    after the body, a chunked HTTP/1.1 client after the last chunk.
. "$(dirname "$0")/lib.sh"

for t in curl nghttp nghttpd python3; do
  command -v "$t" >/dev/null || { echo "Bail out! $t missing"; exit 1; }
done
plugin_dir_own "$RELAIS_TEST_PLUGIN_DIR/tp_body.so"
[ -e "$PLUGIN_DIR/tp_body.so" ] || { echo "Bail out! tp_body.so not built"; exit 1; }

start_whoami w1; P1=$WHOAMI_PORT
ND=$(free_port); RP=$(free_port)
mkdir -p "$T/www"
printf 'static file\n' >"$T/www/f.txt"
nghttpd --no-tls -d "$T/www" --trailer "grpc-status: 0" --trailer "x-t: 1" "$ND" \
  >"$T/nghttpd.log" 2>&1 &
PIDS+=($!)
wait_port "$ND" || { echo "Bail out! nghttpd"; exit 1; }

cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    nest: {rule: "Host(\`nest.test\`)", service: w, middlewares: [outer, inner]}
    trl:  {rule: "Host(\`trl.test\`)", service: nghttpd, middlewares: [trailers]}
    add:  {rule: "Host(\`add.test\`)", service: w, middlewares: [trailers]}
  middlewares:
    outer: {testBody: {requestTag: outer}}
    inner: {testBody: {requestTag: inner, requestUpper: true}}
    trailers: {testBody: {addTrailer: "X-Added: yes", dropTrailer: x-t}}
  services:
    w: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
    nghttpd: {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$ND"}]}}
EOF
static_config "$T/static.yaml" "$RP" "$T/dyn.yaml"
start_relais "$T/static.yaml" "$RP" || { echo "Bail out! relais"; exit 1; }
U=http://127.0.0.1:$RP

# the body the server must get: inner("<outer>" body "</outer>"), inner
# upper-casing what it is given
head -c 200000 /dev/urandom | base64 -w 76 >"$T/body.txt"
python3 - "$T/body.txt" "$T/want.bin" <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read()
outer = b"<outer>" + b + b"</outer>"
open(sys.argv[2], 'wb').write(b"<inner>" + outer.upper() + b"</inner>")
EOF
want="received $(stat -c %s "$T/want.bin") bytes sha256=$(sha256sum <"$T/want.bin" | cut -d' ' -f1)"
is "two request filters, Content-Length client: the server gets inner(outer(body))" "$want" \
  "$(curl -s -H 'Host: nest.test' --data-binary @"$T/body.txt" "$U/upload")"
is "... chunked client" "$want" \
  "$(curl -s -H 'Host: nest.test' -H 'Transfer-Encoding: chunked' --data-binary @"$T/body.txt" "$U/upload")"
is "... HTTP/2 client" "$want" \
  "$(curl -s --http2-prior-knowledge -H 'Host: nest.test' --data-binary @"$T/body.txt" "$U/upload")"
echo_out=$(curl -s -H 'Host: nest.test' --data-binary 'abc' "$U/echo-me")
like "filtered body goes chunked, without Content-Length" \
  "Transfer-Encoding: chunked.*Body-Length: 33" "$(printf '%s' "$echo_out" | tr '\n' ' ')"
is "no Content-Length at the server" "" "$(printf '%s' "$echo_out" | grep -i '^content-length')"
echo_out=$(curl -s -H 'Host: nest.test' "$U/echo-me")
is "a request without a body is not filtered" "" \
  "$(printf '%s' "$echo_out" | grep -iE '^(transfer-encoding|body-length)')"

# response trailers: nghttpd sends grpc-status: 0 and x-t: 1
tr=$(nghttp -v -H ':authority: trl.test' "$U/f.txt" 2>&1)
like "HTTP/2 client: the server's trailer and the added one after the body" \
  "recv DATA frame <length=12.*grpc-status: 0.*x-added: yes.*recv HEADERS frame <length=[0-9]+, flags=0x05" \
  "$(printf '%s' "$tr" | tr '\n' ' ')"
is "the dropped trailer is gone" "" "$(printf '%s' "$tr" | grep 'x-t: 1')"
raw=$(curl -s --raw -H 'Host: add.test' "$U/data?size=5" | tr -d '\r' | tr '\n' '|')
is "chunked HTTP/1.1 client: added trailer after the last chunk" "5|xxxxx|0|X-Added: yes||" "$raw"
raw=$(curl -s --raw -H 'Host: trl.test' "$U/f.txt" | tr -d '\r' | tr '\n' '|')
is "HTTP/1.1 client of the HTTP/2 server: chunked, trailers kept and changed" \
  "c|static file||0|Grpc-Status: 0|X-Added: yes||" "$raw"

stop_relais_clean
t_done
