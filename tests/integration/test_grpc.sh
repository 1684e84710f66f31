#!/usr/bin/env bash
# test_grpc.sh — gRPC proxied end to end (issue 9): a real gRPC server
# (tests/servers/grpc_server.py, Debian's python3-grpcio) behind relais,
# called by a real gRPC client (grpc_client.py, the same library):
#
#  - four paths: client over h2c (plain entry point, prior knowledge) or
#    TLS (ALPN h2), server reached as h2c://127.0.0.1:PORT or as
#    https://127.0.0.1:PORT through a serversTransport with rootCAs (and
#    serverName);
#  - on each: unary with initial and trailing metadata, server streaming,
#    client streaming, bidirectional ping-pong (each message sent only
#    after the previous echo came back: full duplex), Fail as the client
#    sees it (status code enum and details exact, Trailers-Only and after
#    headers, a percent-encoded grpc-message), a 4 MiB reply and a 4 MiB
#    request byte-exact, 200 unary calls on one channel;
#  - a call past its deadline: DEADLINE_EXCEEDED, then the next call on
#    the same channel works; a call cancelled by the client: the server
#    sees the cancellation (RST_STREAM carried through);
#  - curl: a raw gRPC frame POSTed over h2c comes back byte-exact with the
#    trailers (grpc-status: 0, x-trailer: v) shown after the body by
#    curl -v; over HTTP/1.1 (curl --http1.1 --raw) the response is chunked
#    and the trailers follow the last chunk; a Trailers-Only failure keeps
#    grpc-status/grpc-message in the head for both;
#  - a serversTransport with disableHTTP2: true talks HTTP/1.1 to the
#    gRPC server, which refuses it: 502, relais unharmed;
#  - relais stops cleanly (no sanitizer report).
. "$(dirname "$0")/lib.sh"

PY=
for p in python3 /usr/bin/python3; do
  "$p" -c 'import grpc' 2>/dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || { echo "Bail out! python3-grpcio not installed (Debian: python3-grpcio)"; exit 1; }
for c in curl openssl; do
  command -v $c >/dev/null || { echo "Bail out! $c not installed"; exit 1; }
done
curl -V | grep -q HTTP2 || { echo "Bail out! curl without HTTP/2"; exit 1; }

# ---- PKI: relais' certificate (g.test, gs.test) and the backend's
K=$T/pki
mkdir -p "$K"
( set -e
  pki_ca "$K" ca
  pki_leaf "$K" front ca "DNS:g.test,DNS:gs.test,DNS:h1.test"
  pki_leaf "$K" backend ca "DNS:backend.test,IP:127.0.0.1"
) || { echo "Bail out! openssl could not make the test PKI"; cat "$K/pki.log"; exit 1; }

# ---- the gRPC servers: h2c and TLS
GP=$(free_port); GS=$(free_port)
"$PY" "$RELAIS_SRCDIR/tests/servers/grpc_server.py" "$GP" --log "$T/g.log" >"$T/g.out" 2>&1 &
PIDS+=($!)
"$PY" "$RELAIS_SRCDIR/tests/servers/grpc_server.py" "$GS" --tls "$K/backend.pem" "$K/backend.key" \
  --log "$T/gs.log" >"$T/gs.out" 2>&1 &
PIDS+=($!)
wait_port "$GP" && wait_port "$GS" ||
  { echo "Bail out! the gRPC servers do not start"; cat "$T/g.out" "$T/gs.out"; exit 1; }

WP=$(free_port); SP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    g:   {rule: "Host(\`g.test\`)",  service: grpc,  entryPoints: [web]}
    gs:  {rule: "Host(\`gs.test\`)", service: grpcs, entryPoints: [web]}
    h1:  {rule: "Host(\`h1.test\`)", service: grpch1, entryPoints: [web]}
    tg:  {rule: "Host(\`g.test\`)",  service: grpc,  entryPoints: [websecure], tls: {}}
    tgs: {rule: "Host(\`gs.test\`)", service: grpcs, entryPoints: [websecure], tls: {}}
  services:
    grpc:   {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$GP"}]}}
    grpcs:  {loadBalancer: {serversTransport: backend, servers: [{url: "https://127.0.0.1:$GS"}]}}
    grpch1: {loadBalancer: {serversTransport: noh2, servers: [{url: "https://127.0.0.1:$GS"}]}}
  serversTransports:
    backend: {rootCAs: ["$K/ca.pem"], serverName: backend.test}
    noh2:    {rootCAs: ["$K/ca.pem"], serverName: backend.test, disableHTTP2: true}
tls:
  certificates:
    - {certFile: "$K/front.pem", keyFile: "$K/front.key"}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$WP"
  websecure:
    address: "127.0.0.1:$SP"
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/dyn.yaml"}
log: {level: DEBUG}
workers: 2
EOF
start_relais "$T/relais.yaml" "$WP"
wait_port "$SP"
wait_log "configuration [0-9]+ applied" 5 || { echo "Bail out! no configuration"; exit 1; }

CLIENT=$RELAIS_SRCDIR/tests/integration/grpc_client.py
# gc PATH CMD [ARGS...]: the gRPC client through relais on one of the four
# paths: h2c-h2c, h2c-tls (client over h2c, server over TLS), tls-h2c, tls-tls
gc() {
  local path=$1; shift
  case $path in
    h2c-h2c) timeout 60 "$PY" "$CLIENT" "127.0.0.1:$WP" --authority g.test "$@" ;;
    h2c-tls) timeout 60 "$PY" "$CLIENT" "127.0.0.1:$WP" --authority gs.test "$@" ;;
    tls-h2c) timeout 60 "$PY" "$CLIENT" "127.0.0.1:$SP" --ca "$K/ca.pem" --authority g.test "$@" ;;
    tls-tls) timeout 60 "$PY" "$CLIENT" "127.0.0.1:$SP" --ca "$K/ca.pem" --authority gs.test "$@" ;;
  esac 2>>"$T/client.err"
}

# ---- every method on every path
for p in h2c-h2c h2c-tls tls-h2c tls-tls; do
  t0=$(date +%s.%N)
  is "$p: Unary with initial and trailing metadata" \
    "reply=hello initial=x-initial:i trailer=x-trailer:v" "$(gc $p unary hello)"
  is "$p: ServerStream of 5" "stream 0|stream 1|stream 2|stream 3|stream 4" "$(gc $p sstream 5)"
  is "$p: ClientStream of 4 (1111 bytes)" "4 messages 1111 bytes" "$(gc $p cstream 1 10 100 1000)"
  is "$p: Bidi ping-pong (full duplex)" "a|bb|ccc|dddd|e" "$(gc $p bidi a bb ccc dddd e)"
  is "$p: Fail, Trailers-Only: NOT_FOUND and its details exact" \
    "code=NOT_FOUND details=no such thing" "$(gc $p fail)"
  is "$p: Fail after the headers: status in the trailers" \
    "code=PERMISSION_DENIED details=not yours" "$(gc $p fail '+PERMISSION_DENIED:not yours')"
  is "$p: grpc-message percent-encoded on the wire, decoded exact" \
    "code=INVALID_ARGUMENT details=bad 100% ü, \"x\"" "$(gc $p fail 'INVALID_ARGUMENT:bad 100% ü, "x"')"
  is "$p: a 4 MiB reply, byte-exact" "bytes=4194304 exact=yes" "$(gc $p big)"
  is "$p: a 4 MiB request echoed, byte-exact" "bytes=4194304 exact=yes" "$(gc $p upload 4194304)"
  is "$p: 200 unary calls on one channel" "200 calls ok" "$(gc $p many 200)"
  echo "# $p: $(python3 -c "import time; print('%.1f' % (time.time() - $t0))") s"
done

# ---- upstream connections: the 200 calls of one channel (the last 200
# Unary calls of each server's log) share a few connections
for s in g gs; do
  n=$(grep '^CALL Unary ' "$T/$s.log" | tail -200 | awk '{print $3}' | sort -u | wc -l)
  echo "# $s: the last 200 calls came over $n connection(s) from relais"
  ok "$s: 200 calls on one client channel use at most 2 upstream connections" test "$n" -le 2
done

# ---- deadlines and cancellation
for p in h2c-h2c tls-tls; do
  is "$p: Sleep(3 s) with a 0.5 s deadline: DEADLINE_EXCEEDED, the next call fine" \
    "code=DEADLINE_EXCEEDED then reply=after" "$(gc $p deadline 3000 0.5)"
done
ok "relais still running after the deadlines" kill -0 "$RELAIS_PID"
: >"$T/g.log"
is "h2c-h2c: Sleep(5 s) cancelled by the client after 0.3 s" \
  "cancelled=True then reply=after" "$(gc h2c-h2c cancel 5000 0.3)"
for i in $(seq 1 40); do grep -q '^SLEEP' "$T/g.log" && break; sleep 0.1; done
like "... the server saw the cancellation well before 5 s (RST_STREAM carried through)" \
  '^SLEEP cancelled after ([0-9]{1,3}|[1-3][0-9]{3}) ms$' "$(grep '^SLEEP' "$T/g.log")"

# ---- curl: a raw gRPC frame over h2c, trailers after the body
printf '\x00\x00\x00\x00\x05hello' >"$T/frame"
GRPC_H=(-H 'content-type: application/grpc' -H 'te: trailers')
curl -sv --max-time 10 --http2-prior-knowledge "${GRPC_H[@]}" -H 'Host: g.test' \
  --data-binary @"$T/frame" -o "$T/body" "http://127.0.0.1:$WP/relais.test.Echo/Unary" 2>"$T/v.raw"
tr -d '\r' <"$T/v.raw" | grep -E '^< ' >"$T/v"
ok "curl h2c: the reply frame byte-exact" cmp -s "$T/frame" "$T/body"
like "curl h2c: HTTP/2 200" '^< HTTP/2 200' "$(head -1 "$T/v")"
like "curl h2c: content-type application/grpc" '^< content-type: application/grpc$' "$(cat "$T/v")"
like "curl h2c: initial metadata in the head" '^< x-initial: i$' "$(cat "$T/v")"
# after the empty line that ends the head come the trailers
is "curl -v h2c: the trailers after the body" $'< grpc-status: 0\n< x-trailer: v' \
  "$(sed -n '/^< $/,$p' "$T/v" | grep -v '^< $')"
printf '\x00\x00\x00\x00\x00' >"$T/empty"
curl -sv --max-time 10 --http2-prior-knowledge "${GRPC_H[@]}" -H 'Host: g.test' \
  --data-binary @"$T/empty" -o "$T/body" "http://127.0.0.1:$WP/relais.test.Echo/Fail" 2>"$T/v.raw"
tr -d '\r' <"$T/v.raw" | grep -E '^< ' >"$T/v"
is "curl h2c: Trailers-Only failure: grpc-status 5 and grpc-message in the head" \
  "< grpc-status: 5|< grpc-message: no such thing" \
  "$(sed -n '1,/^< $/p' "$T/v" | grep -E '^< grpc-(status|message):' | paste -sd'|')"
is "curl h2c: ... and no body" 0 "$(stat -c %s "$T/body")"

# ---- curl over HTTP/1.1: chunked, the trailers after the last chunk
curl -s --max-time 10 --http1.1 --raw "${GRPC_H[@]}" -H 'Host: g.test' -D "$T/h.raw" \
  --data-binary @"$T/frame" -o "$T/raw" "http://127.0.0.1:$WP/relais.test.Echo/Unary"
tr -d '\r' <"$T/h.raw" >"$T/h"
like "curl --http1.1: 200" '^HTTP/1.1 200' "$(head -1 "$T/h")"
like "curl --http1.1: chunked" '^[Tt]ransfer-[Ee]ncoding: chunked$' "$(cat "$T/h")"
like "curl --http1.1: content-type application/grpc" '^[Cc]ontent-[Tt]ype: application/grpc$' "$(cat "$T/h")"
# chunked_parts FILE: a raw chunked body as "data=HEX trailers=LINE|LINE"
# (names lower-cased), or "bad: why"
chunked_parts() {
  python3 - "$1" <<'PYEOF'
import sys
raw, data, i = open(sys.argv[1], "rb").read(), b"", 0
try:
    while True:
        j = raw.index(b"\r\n", i)
        n = int(raw[i:j].split(b";")[0], 16)
        i = j + 2
        if n == 0:
            break
        data += raw[i:i + n]
        assert raw[i + n:i + n + 2] == b"\r\n", "chunk not followed by CRLF"
        i += n + 2
    assert raw.endswith(b"\r\n\r\n") or raw[i:] == b"\r\n", "no final CRLF"
    lines = [l for l in raw[i:].split(b"\r\n") if l]
    tr = [l.split(b":", 1)[0].lower() + b":" + l.split(b":", 1)[1] for l in lines]
    print("data=%s trailers=%s" % (data.hex(), b"|".join(tr).decode()))
except Exception as e:
    print("bad: %s" % e)
PYEOF
}
is "curl --http1.1 --raw: the frame in chunks, then the last chunk and the trailers" \
  "data=000000000568656c6c6f trailers=grpc-status: 0|x-trailer: v" "$(chunked_parts "$T/raw")"
curl -s --max-time 10 --http1.1 "${GRPC_H[@]}" -H 'Host: g.test' \
  --data-binary @"$T/frame" -o "$T/body" "http://127.0.0.1:$WP/relais.test.Echo/Unary"
ok "curl --http1.1 (decoded): the reply frame byte-exact" cmp -s "$T/frame" "$T/body"
curl -s --max-time 10 --http1.1 "${GRPC_H[@]}" -H 'Host: g.test' -D "$T/h.raw" \
  --data-binary @"$T/empty" -o "$T/body" "http://127.0.0.1:$WP/relais.test.Echo/Fail"
tr -d '\r' <"$T/h.raw" >"$T/h"
is "curl --http1.1: Trailers-Only failure: grpc-status 5 and grpc-message in the head" \
  "grpc-status: 5|grpc-message: no such thing" \
  "$(grep -iE '^grpc-(status|message):' "$T/h" | sed -E 's/^([^:]*):/\L\1:/' | paste -sd'|')"
is "curl --http1.1: ... and no body" 0 "$(stat -c %s "$T/body")"

# ---- disableHTTP2: HTTP/1.1 over TLS to a server that only speaks gRPC
is "disableHTTP2: true: the gRPC server refuses HTTP/1.1: 502" 502 \
  "$(curl -s --max-time 10 --http2-prior-knowledge "${GRPC_H[@]}" -H 'Host: h1.test' \
     --data-binary @"$T/frame" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WP/relais.test.Echo/Unary")"
is "after it, h2c-h2c still fine" "reply=again initial=x-initial:i trailer=x-trailer:v" \
  "$(gc h2c-h2c unary again)"

if [ -s "$T/client.err" ]; then sed 's/^/# client: /' "$T/client.err" | head -20; fi
stop_relais_clean
t_done
