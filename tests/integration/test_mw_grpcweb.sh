#!/usr/bin/env bash
# test_mw_grpcweb.sh — the grpcWeb middleware (plugin grpcweb.so, Traefik's
# grpcWeb) in front of a real gRPC server (tests/servers/grpc_server.py,
# python3-grpcio, reached as h2c://), called by a gRPC-Web client written
# here (grpcweb_client.py: HTTP/1.1 POSTs whose bytes it makes itself):
#
#  - binary mode (application/grpc-web+proto): the exact response body,
#    message frame(s) then the trailer frame (0x80, length, "grpc-status:
#    0\r\nx-trailer: v\r\n"); Content-Type back to the client's; initial
#    metadata in the head; no trailer left for HTTP/1.1 (curl --raw);
#  - text mode (application/grpc-web-text[+proto]): the request decoded
#    (one base64 text, or padded parts one after the other, sent in 7-byte
#    chunks), the response each frame one padded base64 part, exact;
#  - failures: Trailers-Only stays in the head (grpc-status 5,
#    grpc-message, no body); after headers, a trailer frame with
#    grpc-status: 5 and grpc-message (binary and text);
#  - large bodies: a 4 MiB reply in text mode and a 1 MB upload in text
#    mode chunked, checked by SHA-256; server streaming arrives as it is
#    produced (binary and text);
#  - CORS: a preflight from an allowed origin answered 200 with
#    Access-Control-Allow-Origin/-Methods/-Headers/-Credentials/-Max-Age
#    and never forwarded; from another origin 200 without them; "*" and a
#    comma-separated label value; the call's response with
#    Access-Control-Allow-Origin and Access-Control-Expose-Headers
#    (grpc-status, grpc-message); a call from another origin still served;
#  - other requests untouched (whoami sees them as sent), a gRPC-Web call
#    to an HTTP/1.1 server arrives as application/grpc+proto with "te:
#    trailers" and no Content-Length; gRPC-Web over HTTP/2 (curl h2c);
#  - bad text: 400; bad options disable the middleware and its router with
#    the key path in the log; relais stops cleanly.
. "$(dirname "$0")/lib.sh"

PY=
for p in python3 /usr/bin/python3; do
  "$p" -c 'import grpc' 2>/dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || { echo "Bail out! python3-grpcio not installed (Debian: python3-grpcio)"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl not installed"; exit 1; }
plugin_dir_own ${GRPCWEB_SO:+"$GRPCWEB_SO"}
[ -e "$PLUGIN_DIR/grpcweb.so" ] ||
  { echo "Bail out! no grpcweb.so in $RELAIS_PLUGIN_DIR (or GRPCWEB_SO)"; exit 1; }

GP=$(free_port)
"$PY" "$RELAIS_SRCDIR/tests/servers/grpc_server.py" "$GP" --log "$T/g.log" >"$T/g.out" 2>&1 &
PIDS+=($!)
wait_port "$GP" || { echo "Bail out! the gRPC server does not start"; cat "$T/g.out"; exit 1; }
start_whoami w1; WP=$WHOAMI_PORT

RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    gw:   {rule: "Host(\`gw.test\`)",   service: grpc, middlewares: [gweb]}
    any:  {rule: "Host(\`any.test\`)",  service: grpc, middlewares: [gwany]}
    lbl:  {rule: "Host(\`lbl.test\`)",  service: grpc, middlewares: [gwlbl]}
    none: {rule: "Host(\`none.test\`)", service: grpc, middlewares: [gwnone]}
    w:    {rule: "Host(\`w.test\`)",    service: w,    middlewares: [gweb]}
$(for i in 1 2 3 4 5; do
  printf '    badr%s: {rule: "Host(`bad%s.test`)", service: grpc, middlewares: [bad%s]}\n' $i $i $i
done)
  middlewares:
    gweb:   {grpcWeb: {allowOrigins: ["https://app.test"]}}
    gwany:  {grpcWeb: {allowOrigins: ["*"]}}
    gwlbl:  {grpcWeb: {allowOrigins: "https://a.test, https://b.test"}}
    gwnone: {grpcWeb: {}}
    bad1:   {grpcWeb: {allowOrigins: {https://app.test: true}}}
    bad2:   {grpcWeb: {allowOrigins: 42}}
    bad3:   {grpcWeb: {allowOrigins: ["https://a.test", [nested]]}}
    bad4:   {grpcWeb: {allowOrigin: ["https://a.test"]}}
    bad5:   {grpcWeb: ["https://a.test"]}
  services:
    grpc: {loadBalancer: {servers: [{url: "h2c://127.0.0.1:$GP"}]}}
    w:    {loadBalancer: {servers: [{url: "http://127.0.0.1:$WP"}]}}
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
start_relais "$T/relais.yaml" "$RP"
wait_log "configuration [0-9]+ applied" 5 || { echo "Bail out! no configuration"; exit 1; }

WC=$RELAIS_SRCDIR/tests/integration/grpcweb_client.py
E=/relais.test.Echo
# gw HOST PATH [ARGS...]: the gRPC-Web client through relais; its report in
# $T/o (status, "h name: value" lines, frames), the raw body in $T/b
gw() {
  local host=$1 path=$2; shift 2
  timeout 60 python3 "$WC" "$RP" "$host" "$path" --out "$T/b" "$@" >"$T/o" 2>>"$T/client.err"
}
# hv NAME: the first response header NAME of the last gw call ("" if none)
hv() { grep -i "^h $1: " "$T/o" | head -1 | sed 's/^h [^:]*: //'; }
# hn NAME: how many NAME headers the last gw call got
hn() { grep -ic "^h $1: " "$T/o"; }
# st: the status of the last gw call
st() { sed -n 's/^status //p' "$T/o"; }
# frames: the frame lines of the last gw call, "|"-joined
frames() { grep -E '^(DATA|TRAILER|ERROR)' "$T/o" | paste -sd'|'; }
# wire [--text] SPEC...: the bytes of a gRPC-Web body: "d:TEXT" a message
# frame, "t:TEXT" a trailer frame (\r\n in TEXT as written); --text: each
# frame base64-encoded on its own
wire() {
  python3 -c '
import base64, struct, sys
args, text, out = sys.argv[1:], False, b""
if args and args[0] == "--text":
    args, text = args[1:], True
for a in args:
    t = a[2:].encode().decode("unicode_escape").encode("latin-1")
    f = bytes([0x80 if a[0] == "t" else 0]) + struct.pack(">I", len(t)) + t
    out += base64.b64encode(f) if text else f
sys.stdout.buffer.write(out)' "$@"
}
# body_is DESC FILE-CONTENT-COMMAND...: the last raw body equals the output
body_is() {
  local desc=$1; shift
  "$@" >"$T/want"
  if cmp -s "$T/want" "$T/b"; then ok "$desc" true
  else
    ok "$desc" false
    echo "#   want: $(od -An -c "$T/want" | tr -s ' ' | head -c 300)"
    echo "#   got:  $(od -An -c "$T/b" | tr -s ' ' | head -c 300)"
  fi
}
OK_T='t:grpc-status: 0\r\nx-trailer: v\r\n'

# ---- binary mode
gw gw.test $E/Unary --msg hello --origin https://app.test
is "binary Unary: 200" 200 "$(st)"
is "binary Unary: Content-Type back to the client's" application/grpc-web+proto "$(hv content-type)"
body_is "binary Unary: the exact body (message frame, then the trailer frame)" wire d:hello "$OK_T"
is "binary Unary: initial metadata in the head" i "$(hv x-initial)"
is "binary Unary: no grpc-status in the head" 0 "$(hn grpc-status)"
is "binary Unary: no Content-Length (the body changed)" 0 "$(hn content-length)"
is "CORS: Access-Control-Allow-Origin for the allowed origin" https://app.test \
  "$(hv access-control-allow-origin)"
is "CORS: Access-Control-Allow-Credentials" true "$(hv access-control-allow-credentials)"
like "CORS: Vary: Origin" '(^|, *)Origin($|,)' "$(grep -i '^h vary: ' "$T/o" | sed 's/^h [^:]*: //' | paste -sd,)"
X=$(hv access-control-expose-headers | tr A-Z a-z)
like "CORS: Access-Control-Expose-Headers names the metadata header" '(^|, )x-initial(,|$)' "$X"
like "CORS: ... and ends with grpc-status, grpc-message" ', grpc-status, grpc-message$' "$X"
gw gw.test $E/ServerStream --msg 3
body_is "binary ServerStream: three message frames, then the trailer frame" \
  wire 'd:stream 0' 'd:stream 1' 'd:stream 2' 't:grpc-status: 0\r\n'
gw gw.test $E/Unary --msg ""
body_is "binary Unary of an empty message" wire d: "$OK_T"
gw gw.test $E/ClientStream --msg a --msg bb --msg ccc --chunk 3
body_is "binary ClientStream: three frames sent in 3-byte chunks" \
  wire 'd:3 messages 6 bytes' 't:grpc-status: 0\r\n'

# no HTTP trailer is left once the trailers moved into the body (curl --raw)
wire d:raw >"$T/req"
curl -s --max-time 10 --http1.1 --raw -H 'Host: gw.test' -H 'Content-Type: application/grpc-web' \
  --data-binary @"$T/req" -o "$T/raw" "http://127.0.0.1:$RP$E/Unary"
python3 -c '
import sys
raw, data, i = open(sys.argv[1], "rb").read(), b"", 0
while True:
    j = raw.index(b"\r\n", i); n = int(raw[i:j], 16); i = j + 2
    if n == 0: break
    data += raw[i:i + n]; i += n + 2
open(sys.argv[2], "wb").write(data)
print(repr(raw[i:]))' "$T/raw" "$T/b" >"$T/tail" 2>&1
is "curl --http1.1 --raw: nothing after the last chunk but its CRLF (no HTTP trailers)" "b'\\r\\n'" "$(cat "$T/tail")"
body_is "curl --http1.1: the body, de-chunked" wire d:raw "$OK_T"

# ---- text mode
gw gw.test $E/Unary --msg hello --text
is "text Unary: 200" 200 "$(st)"
is "text Unary: Content-Type application/grpc-web-text" application/grpc-web-text "$(hv content-type)"
body_is "text Unary: each frame one padded base64 part, exact" wire --text d:hello "$OK_T"
gw gw.test $E/ClientStream --text --split --ctype application/grpc-web-text+proto \
  --msg a --msg bb --msg cccc --msg ddddd --chunk 7
is "text, padded parts in 7-byte chunks: Content-Type application/grpc-web-text+proto" \
  application/grpc-web-text+proto "$(hv content-type)"
body_is "text, padded parts in 7-byte chunks: all four messages decoded" \
  wire --text 'd:4 messages 12 bytes' 't:grpc-status: 0\r\n'
gw gw.test $E/ClientStream --text --msg a --msg bb --msg cccc --msg ddddd --chunk 5
body_is "text, one base64 text in 5-byte chunks: decoded" \
  wire --text 'd:4 messages 12 bytes' 't:grpc-status: 0\r\n'
gw gw.test $E/ServerStream --msg 4 --text --frames
is "text ServerStream: the frames" \
  "DATA n=8 sha=$(printf 'stream 0' | sha256sum | cut -c1-16) text=stream 0|DATA n=8 sha=$(printf 'stream 1' | sha256sum | cut -c1-16) text=stream 1|DATA n=8 sha=$(printf 'stream 2' | sha256sum | cut -c1-16) text=stream 2|DATA n=8 sha=$(printf 'stream 3' | sha256sum | cut -c1-16) text=stream 3|TRAILER 'grpc-status: 0\\r\\n'" \
  "$(frames)"
body_is "text ServerStream: exact" wire --text 'd:stream 0' 'd:stream 1' 'd:stream 2' 'd:stream 3' \
  't:grpc-status: 0\r\n'

# ---- failures
gw gw.test $E/Fail --msg 'NOT_FOUND:no such thing' --origin https://app.test
is "Trailers-Only: 200" 200 "$(st)"
is "Trailers-Only: grpc-status 5 in the head" 5 "$(hv grpc-status)"
is "Trailers-Only: grpc-message in the head" "no such thing" "$(hv grpc-message)"
is "Trailers-Only: Content-Type back to the client's" application/grpc-web+proto "$(hv content-type)"
is "Trailers-Only: no body" 0 "$(stat -c %s "$T/b")"
like "Trailers-Only: Expose-Headers names grpc-status and grpc-message" \
  'grpc-status, grpc-message' "$(hv access-control-expose-headers | tr A-Z a-z)"
gw gw.test $E/Fail --msg '+NOT_FOUND:no such thing'
is "failure after the headers: 200" 200 "$(st)"
is "failure after the headers: no grpc-status in the head" 0 "$(hn grpc-status)"
body_is "failure after the headers: the trailer frame with grpc-status 5 and grpc-message" \
  wire 't:grpc-status: 5\r\ngrpc-message: no such thing\r\n'
gw gw.test $E/Fail --msg '+PERMISSION_DENIED:100% ü' --text
body_is "text failure: grpc-message percent-encoded as the server sent it, base64" \
  wire --text 't:grpc-status: 7\r\ngrpc-message: 100%25 %C3%BC\r\n'
gw gw.test $E/Nope --msg x
is "unknown method: Trailers-Only UNIMPLEMENTED (12)" "200 12" "$(st) $(hv grpc-status)"

# ---- large bodies, streaming
gw gw.test $E/Big --msg 4194304 --text --frames
BIGSHA=$(python3 -c 'import hashlib, random; print(hashlib.sha256(random.Random(9).randbytes(4194304)).hexdigest()[:16])')
is "text Big: 4 MiB, SHA-256 exact, then the trailers" \
  "DATA n=4194304 sha=$BIGSHA|TRAILER 'grpc-status: 0\\r\\n'" "$(frames)"
is "text Big: the base64 text has the exact length" $(( (4194309 + 2) / 3 * 4 + 28 )) "$(stat -c %s "$T/b")"
gw gw.test $E/Unary --random 1000000 --text --chunk 1001 --frames
UPSHA=$(python3 -c 'import hashlib, random; print(hashlib.sha256(random.Random(11).randbytes(1000000)).hexdigest()[:16])')
is "text upload of 1 MB in 1001-byte chunks: echoed exact" \
  "DATA n=1000000 sha=$UPSHA|TRAILER 'grpc-status: 0\\r\\nx-trailer: v\\r\\n'" "$(frames)"
# The same upload with its last chunk ("0\r\n\r\n") sent 500 ms late: the
# server answers as soon as the message is whole, so the response ends
# before the request body; relais closes the connection then, and a close
# with the client's late bytes unread would reset it under the response
# still in flight (the rare failure of the check above when the client
# was slow to send its last chunk).  Lingering close: the whole answer,
# then a clean end (EOF, no reset).
late_end() {
  timeout 60 python3 - "$RP" "$RELAIS_SRCDIR/tests/integration" <<'PYEOF'
import base64, random, socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from grpcweb_client import b64parts, parse
msg = random.Random(11).randbytes(1000000)
body = base64.b64encode(b"\0" + struct.pack(">I", len(msg)) + msg)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"POST /relais.test.Echo/Unary HTTP/1.1\r\nHost: gw.test\r\n"
          b"Content-Type: application/grpc-web-text\r\nX-Grpc-Web: 1\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n")
for i in range(0, len(body), 1001):
    s.sendall(b"%x\r\n" % len(body[i:i + 1001]) + body[i:i + 1001] + b"\r\n")
time.sleep(0.5)
s.sendall(b"0\r\n\r\n")
raw, end = b"", "eof"
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        raw += d
except OSError as e:
    end = "error after %d bytes: %s" % (len(raw), e)
head, _, rest = raw.partition(b"\r\n\r\n")
data, parts = b"", []
try:
    while rest:  # de-chunked
        n, _, rest = rest.partition(b"\r\n")
        n = int(n, 16)
        if n == 0:
            break
        parts.append(rest[:n])
        rest = rest[n + 2:]
    data = b"".join(parts)
    frames = "|".join(parse(b64parts(data)[0], None))
except ValueError as e:
    frames = "ERROR %s" % e
print("%s %s %s" % (head.split(b" ")[1].decode() if head else "-", frames, end))
PYEOF
}
is "text upload whose last chunk comes after the answer: all of it, then a clean close" \
  "200 DATA n=1000000 sha=$UPSHA|TRAILER 'grpc-status: 0\\r\\nx-trailer: v\\r\\n' eof" "$(late_end)"
for mode in binary text; do
  arg=; [ $mode = text ] && arg=--text
  gw gw.test $E/ServerStream --msg 3:500 $arg --frames --times
  t0=$(grep -m1 '^DATA' "$T/o" | sed 's/.* at //'); t2=$(grep '^DATA' "$T/o" | sed -n 3p | sed 's/.* at //')
  echo "# $mode ServerStream 3:500: first message at ${t0:-?} ms, third at ${t2:-?} ms"
  ok "$mode ServerStream, 500 ms apart: each message arrives as produced (first >= 700 ms before the third)" \
    test "$(( ${t2:-0} - ${t0:-0} ))" -ge 700
done

# ---- CORS preflight
pre() { gw "$1" $E/Unary --method OPTIONS --origin "$2" \
  --header 'Access-Control-Request-Method: POST' --header "Access-Control-Request-Headers: ${3:-x-grpc-web,content-type,x-user-agent}"; }
: >"$T/w1.log"
pre w.test https://app.test
is "preflight from an allowed origin: 200" 200 "$(st)"
is "preflight: Access-Control-Allow-Origin" https://app.test "$(hv access-control-allow-origin)"
is "preflight: Access-Control-Allow-Methods" POST "$(hv access-control-allow-methods)"
is "preflight: Access-Control-Allow-Headers (the requested ones, canonical)" \
  "X-Grpc-Web, Content-Type, X-User-Agent" "$(hv access-control-allow-headers)"
is "preflight: Access-Control-Allow-Credentials" true "$(hv access-control-allow-credentials)"
is "preflight: Access-Control-Max-Age" 600 "$(hv access-control-max-age)"
is "preflight: no body" 0 "$(stat -c %s "$T/b")"
is "preflight: answered by relais, never forwarded" "" "$(cat "$T/w1.log")"
pre w.test https://evil.test
is "preflight from another origin: 200" 200 "$(st)"
is "... without Access-Control-Allow-Origin" 0 "$(hn access-control-allow-origin)"
is "... nor -Methods" 0 "$(hn access-control-allow-methods)"
pre any.test https://whatever.example
is "allowOrigins [\"*\"]: any origin allowed (echoed)" https://whatever.example \
  "$(hv access-control-allow-origin)"
pre lbl.test https://b.test
is "allowOrigins as a comma-separated string: second item allowed" https://b.test \
  "$(hv access-control-allow-origin)"
pre lbl.test https://c.test
is "... an origin not in it: no Access-Control-Allow-Origin" 0 "$(hn access-control-allow-origin)"
pre none.test https://app.test
is "grpcWeb: {} allows no origin" 0 "$(hn access-control-allow-origin)"
: >"$T/w1.log"
pre w.test https://app.test content-type
is "OPTIONS without x-grpc-web in Access-Control-Request-Headers: forwarded" "OPTIONS /relais.test.Echo/Unary" \
  "$(cat "$T/w1.log")"

# ---- calls from other origins, protocols, other requests
gw gw.test $E/Unary --msg hi --origin https://evil.test
is "a call from another origin is still served" 200 "$(st)"
body_is "... with the exact body" wire d:hi "$OK_T"
is "... but without Access-Control-Allow-Origin" 0 "$(hn access-control-allow-origin)"
gw any.test $E/Unary --msg hi --origin https://x.example
is "allowOrigins [\"*\"]: the call's Access-Control-Allow-Origin echoes the origin" https://x.example \
  "$(hv access-control-allow-origin)"
wire d:h2 >"$T/req"
curl -s --max-time 10 --http2-prior-knowledge -H 'Host: gw.test' -H 'Content-Type: application/grpc-web+proto' \
  --data-binary @"$T/req" -o "$T/b" -D "$T/h2h" "http://127.0.0.1:$RP$E/Unary"
like "gRPC-Web over HTTP/2 (curl h2c): 200" '^HTTP/2 200' "$(head -1 "$T/h2h")"
body_is "gRPC-Web over HTTP/2: the exact body" wire d:h2 "$OK_T"
is "gRPC-Web over HTTP/2: no HTTP trailer left (curl shows none)" "" \
  "$(sed -n '/^\r$/,$p' "$T/h2h" | tr -d '\r' | grep -v '^$')"

B=$(curl -s --max-time 10 -H 'Host: w.test' -H 'Origin: https://app.test' "http://127.0.0.1:$RP/plain?x=1")
like "GET passes untouched" '^GET /plain\?x=1 HTTP/1.1' "$B"
curl -s --max-time 10 -D "$T/h" -o /dev/null -H 'Host: w.test' -H 'Origin: https://app.test' "http://127.0.0.1:$RP/plain"
is "GET: no CORS header added" 0 "$(grep -ci '^access-control-' "$T/h")"
B=$(curl -s --max-time 10 -H 'Host: w.test' -H 'Content-Type: application/json' --data-binary '{"a":1}' \
  "http://127.0.0.1:$RP/j")
like "POST application/json: Content-Type untouched" 'Content-Type: application/json' "$B"
like "POST application/json: Content-Length kept" 'Content-Length: 7' "$B"
is "POST application/json: no te added" "" "$(printf '%s\n' "$B" | grep -i '^te:')"
B=$(curl -s --max-time 10 -H 'Host: w.test' -H 'Content-Type: application/grpc-web+proto' \
  --data-binary @"$T/req" "http://127.0.0.1:$RP$E/Unary")
like "gRPC-Web to an HTTP/1.1 server: Content-Type application/grpc+proto" '^[Cc]ontent-[Tt]ype: application/grpc\+proto' "$B"
like "... te: trailers" '^[Tt][Ee]: trailers' "$B"
is "... no Content-Length (the body goes through the filter)" "" "$(printf '%s\n' "$B" | grep -i '^content-length:')"
like "... all 7 body bytes" 'Body-Length: 7' "$B"

# ---- bad text
gw gw.test $E/Unary --text --raw-body 'AAAA*AAA'
is "text body that is not base64: 400" 400 "$(st)"
gw gw.test $E/Unary --msg after
body_is "afterwards: served" wire d:after "$OK_T"

# ---- bad options: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad[0-9]@file\.grpcWeb'
pat() { printf '%s' "${P/\[0-9\]/$1}"; }
ok "allowOrigins a map -> expected a list, with its path" \
  wait_log "middleware bad1@file disabled: $(pat 1)\.allowOrigins: expected a list of strings"
ok "allowOrigins a number -> expected a list" \
  wait_log "middleware bad2@file disabled: $(pat 2)\.allowOrigins: expected a list of strings"
ok "allowOrigins item not a string -> the item's path" \
  wait_log "middleware bad3@file disabled: $(pat 3)\.allowOrigins\[1\]: expected a string"
ok "allowOrigin (typo) -> unknown option" \
  wait_log "middleware bad4@file disabled: $(pat 4)\.allowOrigin: unknown option"
ok "grpcWeb a list -> expected a map" \
  wait_log "middleware bad5@file disabled: $(pat 5): expected a map"
for i in 1 2 3 4 5; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
done
is "bad1.test not served" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: bad1.test' "http://127.0.0.1:$RP/")"

if [ -s "$T/client.err" ]; then sed 's/^/# client: /' "$T/client.err" | head -20; fi
stop_relais_clean
t_done
