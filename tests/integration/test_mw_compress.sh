#!/usr/bin/env bash
# The compress middleware (plugin compress.so, Traefik v3's compress):
# what relais sends is decompressed with independent tools (python3's
# gzip module, the brotli and zstd command-line tools) and compared with
# the backend's exact bytes.  Encoding choice by Accept-Encoding (q-values,
# "*", identity, q=0, several headers, encodings order, defaultEncoding);
# minResponseBodyBytes with and without Content-Length; excluded and
# included content types (with parameters); a response already encoded, a
# range answer, application/grpc, an unparsable Content-Type; HEAD, 204,
# 304; Vary; Accept-Encoding forwarded; several MB streamed (Content-Length,
# chunked, close-delimited) with relais' memory checked; a client leaving
# mid-body has its encoder freed when its exchange ends (not at exit); bad
# options disable the middleware and its router with the key path in the
# log.
#
# Backends: whoami (contrib/whoami) and a small python3 server written
# here for the headers whoami cannot send.  The plugin comes from
# $RELAIS_PLUGIN_DIR (staged by make) or from $COMPRESS_SO when set.
. "$(dirname "$0")/lib.sh"

for c in curl python3 brotli zstd; do
  command -v $c >/dev/null || { echo "Bail out! $c not installed"; exit 1; }
done
plugin_dir_own ${COMPRESS_SO:+"$COMPRESS_SO"}
[ -e "$PLUGIN_DIR/compress.so" ] ||
  { echo "Bail out! no compress.so in $RELAIS_PLUGIN_DIR (or COMPRESS_SO)"; exit 1; }

start_whoami w1; WP=$WHOAMI_PORT

# ---- a python backend for the special responses
PYP=$(free_port)
cat >"$T/backend.py" <<'EOF'
import gzip, random, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

rnd = random.Random(7)
WORDS = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(2, 9)))
         for _ in range(3000)]
TEXT = ' '.join(rnd.choice(WORDS) for _ in range(900000)).encode()[:6 * 1024 * 1024]
BODY = bytes(rnd.randrange(32, 127) for _ in range(5000))

class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def send(self, status, headers, body, mode='length'):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if mode == 'length':
            self.send_header('Content-Length', str(len(body)))
        elif mode == 'chunked':
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        if self.command == 'HEAD':
            return
        if mode == 'chunked':
            for i in range(0, len(body), 7000):
                part = body[i:i + 7000]
                self.wfile.write(b'%x\r\n' % len(part) + part + b'\r\n')
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        p = u.path
        if p == '/text':
            n = int(q.get('size', '100000'))
            self.send(200, [('Content-Type', 'text/plain; charset=utf-8')], TEXT[:n],
                      q.get('mode', 'length'))
        elif p == '/enc':
            self.send(200, [('Content-Type', 'text/plain'), ('Content-Encoding', 'gzip')],
                      gzip.compress(BODY, mtime=0))
        elif p == '/range':
            self.send(206, [('Content-Type', 'text/plain'),
                            ('Content-Range', 'bytes 0-4999/10000')], BODY)
        elif p == '/grpc':
            self.send(200, [('Content-Type', 'application/grpc')], BODY)
        elif p == '/badct':
            self.send(200, [('Content-Type', 'text/')], BODY)
        elif p == '/noct':
            self.send(200, [], BODY)
        elif p == '/vary':
            self.send(200, [('Content-Type', 'text/html'), ('Vary', 'Origin, accept-encoding')],
                      BODY)
        elif p == '/latin':
            self.send(200, [('Content-Type', 'text/plain; charset=latin1')], BODY)
        elif p == '/ranges':
            self.send(200, [('Content-Type', 'text/plain'), ('Accept-Ranges', 'bytes')], BODY)
        else:
            self.send(404, [('Content-Type', 'text/plain')], b'no\n')

ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
EOF
python3 "$T/backend.py" "$PYP" >"$T/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$PYP" || { echo "Bail out! python backend did not start"; exit 1; }

RP=$(free_port)
DYN=$T/dyn.yaml
cat >"$DYN" <<EOF
http:
  routers:
    def:   {rule: Host(\`def.test\`),   service: w,  middlewares: [cdef]}
    py:    {rule: Host(\`py.test\`),    service: py, middlewares: [cdef]}
    min:   {rule: Host(\`min.test\`),   service: w,  middlewares: [cmin]}
    ex:    {rule: Host(\`ex.test\`),    service: w,  middlewares: [cex]}
    inc:   {rule: Host(\`inc.test\`),   service: w,  middlewares: [cinc]}
    incp:  {rule: Host(\`incp.test\`),  service: py, middlewares: [cincp]}
    dflt:  {rule: Host(\`dflt.test\`),  service: w,  middlewares: [cdflt]}
    ord:   {rule: Host(\`ord.test\`),   service: w,  middlewares: [cord]}
    lbl:   {rule: Host(\`lbl.test\`),   service: w,  middlewares: [clbl]}
    pyex:  {rule: Host(\`pyex.test\`),  service: py, middlewares: [cpyex]}
    plain: {rule: Host(\`plain.test\`), service: w}
$(for i in 1 2 3 4 5 6 7 8 9; do
  printf '    badr%s: {rule: Host(`bad%s.test`), service: w, middlewares: [bad%s]}\n' $i $i $i
done)
  middlewares:
    cdef:  {compress: {}}
    cmin:  {compress: {minResponseBodyBytes: 100}}
    cex:   {compress: {excludedContentTypes: [" Text/Plain "]}}
    cinc:  {compress: {includedContentTypes: [application/json], minResponseBodyBytes: 1}}
    cincp: {compress: {includedContentTypes: ["text/plain; charset=utf-8"]}}
    cdflt: {compress: {defaultEncoding: gzip}}
    cord:  {compress: {encodings: [gzip, br]}}
    clbl:  {compress: "true"}
    cpyex: {compress: {excludedContentTypes: "text/html, application/x-nothing"}}
    bad1:  {compress: {encodings: [gzip, lzma]}}
    bad2:  {compress: {encodings: []}}
    bad3:  {compress: {encodings: [gzip], defaultEncoding: zstd}}
    bad4:  {compress: {excludedContentTypes: [text/html], includedContentTypes: [text/plain]}}
    bad5:  {compress: {excludedContentTypes: [text/plain, "text/"]}}
    bad6:  {compress: {minResponseBodyBytes: lots}}
    bad7:  {compress: {level: 5}}
    bad8:  {compress: [gzip]}
    bad9:  {compress: {includedContentTypes: ["text/plain; charset"]}}
  services:
    w:  {loadBalancer: {servers: [{url: "http://127.0.0.1:$WP"}]}}
    py: {loadBalancer: {servers: [{url: "http://127.0.0.1:$PYP"}]}}
EOF
static_config "$T/relais.yaml" "$RP" "$DYN"
start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

# fetch HOST PATH [CURL-ARGS...]: the response head to $T/h (CRs removed),
# the raw body (not decoded) to $T/b; prints the status.
fetch() {
  local h=$1 p=$2; shift 2
  curl -s --max-time 20 -D "$T/h.raw" -o "$T/b" -w '%{http_code}' -H "Host: $h" "$@" \
    "http://127.0.0.1:$RP$p"
  tr -d '\r' <"$T/h.raw" >"$T/h"
}
# hval NAME: the value of response header NAME in $T/h (first one), or "".
hval() { grep -i "^$1:" "$T/h" | head -1 | sed 's/^[^:]*: *//'; }
# hcount NAME: how many NAME headers $T/h has.
hcount() { grep -ic "^$1:" "$T/h"; }
# dec ENC FILE: FILE decoded with an independent tool (stdout).
dec() {
  case $1 in
    gzip) python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1],"rb").read()))' "$2" ;;
    br) brotli -d -c "$2" ;;
    zstd) zstd -d -q -c "$2" ;;
    *) cat "$2" ;;
  esac
}
# xs N: N bytes of "x" (what whoami's /data sends)
xs() { head -c "$1" /dev/zero | tr '\0' x; }
# direct PATH FILE: the python backend's own bytes for PATH into FILE
direct() { curl -s --max-time 20 -o "$2" "http://127.0.0.1:$PYP$1"; }
# same DESC FILE1 FILE2: passes when the files have the same bytes
same() { ok "$1" cmp -s "$2" "$3"; }

# ---- the three encodings, decoded with other tools
xs 5000 >"$T/x5000"
for e in gzip br zstd; do
  is "$e: 200" 200 "$(fetch def.test '/data?size=5000' -H "Accept-Encoding: $e")"
  is "$e: Content-Encoding: $e" "$e" "$(hval Content-Encoding)"
  is "$e: Vary: Accept-Encoding" "Accept-Encoding" "$(hval Vary)"
  is "$e: no Content-Length" 0 "$(hcount Content-Length)"
  is "$e: chunked to the client" chunked "$(hval Transfer-Encoding)"
  ok "$e: the body is smaller than the 5000 bytes sent" test "$(stat -c %s "$T/b")" -lt 1000
  dec $e "$T/b" >"$T/d"
  same "$e: decoded with an independent tool, the backend's exact bytes" "$T/d" "$T/x5000"
done
direct '/text?size=300000' "$T/t300k"
for e in gzip br zstd; do
  fetch py.test '/text?size=300000' -H "Accept-Encoding: $e" >/dev/null
  dec $e "$T/b" >"$T/d"
  same "$e: 300000 bytes of text, decoded, identical" "$T/d" "$T/t300k"
  ok "$e: ... and compressed (< 60%)" test "$(stat -c %s "$T/b")" -lt 180000
done

# ---- choosing the encoding (default encodings: zstd, br, gzip)
ae() { fetch def.test '/data?size=2000' "$@" >/dev/null; hval Content-Encoding; }
is "Accept-Encoding: gzip, br -> br (priority at equal q)" br "$(ae -H 'Accept-Encoding: gzip, br')"
is "gzip, br, zstd -> zstd" zstd "$(ae -H 'Accept-Encoding: gzip, br, zstd')"
is "br;q=0.8, gzip;q=1.0 -> gzip" gzip "$(ae -H 'Accept-Encoding: br;q=0.8, gzip;q=1.0')"
is "br;q=0.8, gzip;q=0.6 -> br" br "$(ae -H 'Accept-Encoding: br;q=0.8, gzip;q=0.6')"
is "zstd;q=0.1, gzip;q=0.2 -> gzip" gzip "$(ae -H 'Accept-Encoding: zstd;q=0.1,gzip;q=0.2')"
is "gzip;q=0, br;q=0 -> none" "" "$(ae -H 'Accept-Encoding: gzip;q=0, br;q=0')"
is "... and the body is the backend's" 2000 "$(stat -c %s "$T/b")"
is "... with its Content-Length" 2000 "$(hval Content-Length)"
is "... and no Vary (nothing was negotiated)" 0 "$(hcount Vary)"
is "* -> zstd (the first of encodings)" zstd "$(ae -H 'Accept-Encoding: *')"
is "*;q=0 -> none" "" "$(ae -H 'Accept-Encoding: *;q=0')"
is "*, gzip -> zstd (Traefik: * first at equal q)" zstd "$(ae -H 'Accept-Encoding: *, gzip')"
is "gzip;q=0.5, * -> zstd" zstd "$(ae -H 'Accept-Encoding: gzip;q=0.5, *')"
is "identity -> none" "" "$(ae -H 'Accept-Encoding: identity')"
is "gzip;q=0.5, identity -> none (identity has q=1)" "" "$(ae -H 'Accept-Encoding: gzip;q=0.5, identity')"
is "deflate, compress -> none" "" "$(ae -H 'Accept-Encoding: deflate, compress')"
is "empty Accept-Encoding -> none" "" "$(ae -H 'Accept-Encoding;')"
is "no Accept-Encoding -> none" "" "$(ae)"
is "GZIP (case-insensitive) -> gzip" gzip "$(ae -H 'Accept-Encoding: GZIP')"
is "gzip;q=abc, br;q=0.1 -> br (an unparsable q is 0)" br "$(ae -H 'Accept-Encoding: gzip;q=abc, br;q=0.1')"
is "two headers: gzip;q=0.5 and br;q=0.9 -> br" br \
  "$(ae -H 'Accept-Encoding: gzip;q=0.5' -H 'Accept-Encoding: br;q=0.9')"
is "x-gzip;q=1, gzip;q=0.3 -> gzip" gzip "$(ae -H 'Accept-Encoding: x-gzip;q=1, gzip;q=0.3')"
aeh() { local h=$1; shift; fetch "$h" '/data?size=2000' "$@" >/dev/null; hval Content-Encoding; }
is "encodings [gzip, br]: * -> gzip" gzip "$(aeh ord.test -H 'Accept-Encoding: *')"
is "encodings [gzip, br]: br, gzip -> gzip" gzip "$(aeh ord.test -H 'Accept-Encoding: br, gzip')"
is "encodings [gzip, br]: zstd -> none" "" "$(aeh ord.test -H 'Accept-Encoding: zstd')"
is "defaultEncoding gzip: no Accept-Encoding -> gzip" gzip "$(aeh dflt.test)"
is "defaultEncoding gzip: * -> gzip" gzip "$(aeh dflt.test -H 'Accept-Encoding: *')"
is "defaultEncoding gzip: br -> br" br "$(aeh dflt.test -H 'Accept-Encoding: br')"
is "defaultEncoding gzip: empty Accept-Encoding -> none" "" "$(aeh dflt.test -H 'Accept-Encoding;')"
is "compress: \"true\" (a label) -> the defaults" zstd "$(aeh lbl.test -H 'Accept-Encoding: zstd, gzip')"

# ---- Accept-Encoding is forwarded to the server (as Traefik)
fetch def.test '/' -H 'Accept-Encoding: gzip;q=0.7, br' -H "X-Pad: $(xs 1500)" >/dev/null
is "the echo is compressed (br)" br "$(hval Content-Encoding)"
ok "the server saw Accept-Encoding unchanged" sh -c "brotli -d -c '$T/b' | grep -qx 'Accept-Encoding: gzip;q=0.7, br'"

# ---- minResponseBodyBytes
is "default min: 1023 bytes with Content-Length -> not compressed" "" \
  "$(fetch def.test '/data?size=1023' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
is "... Content-Length kept" 1023 "$(hval Content-Length)"
same "... body unchanged" "$T/b" <(xs 1023)
is "... Vary: Accept-Encoding all the same (as Traefik)" "Accept-Encoding" "$(hval Vary)"
is "default min: 1024 bytes -> gzip" gzip \
  "$(fetch def.test '/data?size=1024' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
same "... decoded, identical" <(dec gzip "$T/b") <(xs 1024)
is "minResponseBodyBytes 100: 99 bytes -> not compressed" "" \
  "$(fetch min.test '/data?size=99' -H 'Accept-Encoding: zstd' >/dev/null; hval Content-Encoding)"
is "minResponseBodyBytes 100: 100 bytes -> zstd" zstd \
  "$(fetch min.test '/data?size=100' -H 'Accept-Encoding: zstd' >/dev/null; hval Content-Encoding)"
same "... decoded, identical" <(dec zstd "$T/b") <(xs 100)
# without Content-Length the head leaves before the size is known: compressed
for e in gzip br zstd; do
  is "chunked, 10 bytes (below min, length unknown): $e anyway" $e \
    "$(fetch def.test '/data?size=10&chunked=1' -H "Accept-Encoding: $e" >/dev/null; hval Content-Encoding)"
  same "... decoded, identical" <(dec $e "$T/b") <(xs 10)
done
is "chunked, 0 bytes: gzip of nothing" "" \
  "$(fetch def.test '/data?size=0&chunked=1' -H 'Accept-Encoding: gzip' >/dev/null; dec gzip "$T/b")"

# ---- content types
is "excludedContentTypes [\" Text/Plain \"]: text/plain; charset=utf-8 not compressed" "" \
  "$(fetch ex.test '/' -H 'Accept-Encoding: gzip' -H 'X-Pad: '"$(xs 1500)" >/dev/null; hval Content-Encoding)"
ok "... the echo arrives as sent" grep -q '^X-Pad: xxxx' "$T/b"
is "... application/octet-stream still compressed" gzip \
  "$(fetch ex.test '/data?size=2000' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
is "includedContentTypes [application/json]: /api compressed" gzip \
  "$(fetch inc.test '/api' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
ok "... decoded: the JSON echo" sh -c "dec() { python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1],\"rb\").read()))' \"\$1\"; }; dec '$T/b' | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"host\"]==\"inc.test\" else 1)'"
is "... application/octet-stream not compressed" "" \
  "$(fetch inc.test '/data?size=2000' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
is "includedContentTypes [text/plain; charset=utf-8]: same parameters -> compressed" br \
  "$(fetch incp.test '/text?size=5000' -H 'Accept-Encoding: br' >/dev/null; hval Content-Encoding)"
is "... charset=latin1 -> not compressed" "" \
  "$(fetch incp.test '/latin' -H 'Accept-Encoding: br' >/dev/null; hval Content-Encoding)"
is "excludedContentTypes as one comma string: text/html excluded" "" \
  "$(fetch pyex.test '/vary' -H 'Accept-Encoding: br' >/dev/null; hval Content-Encoding)"
is "... text/plain compressed" br \
  "$(fetch pyex.test '/text?size=5000' -H 'Accept-Encoding: br' >/dev/null; hval Content-Encoding)"
is "application/grpc response: never compressed" "" \
  "$(fetch py.test '/grpc' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
is "application/grpc request: not compressed" "" \
  "$(fetch def.test '/data?size=2000' -H 'Accept-Encoding: gzip' -H 'Content-Type: application/grpc' >/dev/null; hval Content-Encoding)"
is "... nor negotiated (no Vary)" 0 "$(hcount Vary)"
is "unparsable Content-Type (text/): not compressed" "" \
  "$(fetch py.test '/badct' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
direct /noct "$T/body5000"
is "no Content-Type: compressed" gzip \
  "$(fetch py.test '/noct' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
same "... decoded, identical" <(dec gzip "$T/b") "$T/body5000"
is "no Content-Type: none added" 0 "$(hcount Content-Type)"

# ---- responses left alone
direct /enc "$T/enc"
is "already encoded (Content-Encoding: gzip): 200" 200 "$(fetch py.test /enc -H 'Accept-Encoding: br, zstd, gzip')"
is "... Content-Encoding still gzip, once" "gzip 1" "$(hval Content-Encoding) $(hcount Content-Encoding)"
same "... the body is the server's, not compressed twice" "$T/b" "$T/enc"
is "... its Content-Length kept" "$(stat -c %s "$T/enc")" "$(hval Content-Length)"
is "range answer (206, Content-Range): 206" 206 "$(fetch py.test /range -H 'Accept-Encoding: gzip')"
is "... not compressed" "" "$(hval Content-Encoding)"
same "... the body as sent" "$T/b" "$T/body5000"
is "Vary already naming accept-encoding: not added twice" "1 Origin, accept-encoding" \
  "$(fetch py.test /vary -H 'Accept-Encoding: gzip' >/dev/null; echo "$(hcount Vary) $(hval Vary)")"
is "... compressed" gzip "$(hval Content-Encoding)"
is "Accept-Ranges removed from a compressed answer" "gzip 0" \
  "$(fetch py.test /ranges -H 'Accept-Encoding: gzip' >/dev/null; echo "$(hval Content-Encoding) $(hcount Accept-Ranges)")"
is "... kept on an uncompressed one" "bytes" \
  "$(fetch py.test /ranges >/dev/null; hval Accept-Ranges)"
is "HEAD: 200" 200 "$(curl -s -I --max-time 5 -D "$T/h.raw" -o /dev/null -w '%{http_code}' -H 'Host: def.test' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$RP/data?size=5000")"
tr -d '\r' <"$T/h.raw" >"$T/h"
is "HEAD: no Content-Encoding, Content-Length kept" " 5000" "$(hval Content-Encoding) $(hval Content-Length)"
is "204: 204" 204 "$(fetch def.test '/?status=204' -H 'Accept-Encoding: gzip')"
is "204: no Content-Encoding, no body" "0 0" "$(hcount Content-Encoding) $(stat -c %s "$T/b")"
is "304: 304" 304 "$(fetch def.test '/?status=304' -H 'Accept-Encoding: gzip')"
is "304: no Content-Encoding, no body" "0 0" "$(hcount Content-Encoding) $(stat -c %s "$T/b")"
is "404 with a big body: compressed as well" gzip \
  "$(fetch def.test "/?status=404&pad=$(xs 1500)" -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"
is "no middleware: never compressed" "" \
  "$(fetch plain.test '/data?size=5000' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"

# ---- HTTP/1.0 client: close-delimited compressed body
printf 'GET /data?size=3000 HTTP/1.0\r\nHost: def.test\r\nAccept-Encoding: gzip\r\n\r\n' |
  timeout 5 python3 -c '
import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); s.sendall(sys.stdin.buffer.read())
d=b""
while True:
    b=s.recv(65536)
    if not b: break
    d+=b
h,_,body=d.partition(b"\r\n\r\n"); open(sys.argv[2],"wb").write(body); open(sys.argv[3],"wb").write(h)
' "$RP" "$T/b10" "$T/h10"
ok "HTTP/1.0: Content-Encoding gzip, no chunked framing" \
  sh -c "grep -qi '^Content-Encoding: gzip' '$T/h10' && ! grep -qi 'Transfer-Encoding' '$T/h10'"
same "HTTP/1.0: decoded, identical" <(dec gzip "$T/b10") <(xs 3000)

# ---- several MB, streamed
direct '/text?size=6000000' "$T/t6m"
for e in gzip br zstd; do
  for m in length chunked close; do
    fetch py.test "/text?size=6000000&mode=$m" -H "Accept-Encoding: $e" >/dev/null
    dec $e "$T/b" >"$T/d"
    same "6 MB of text ($m framing) in $e: decoded, identical" "$T/d" "$T/t6m"
  done
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$RELAIS_PID/status"; }
rss0=$(rss)
for e in gzip br zstd; do
  for i in 1 2 3 4; do
    curl -s --max-time 60 -H 'Host: def.test' -H "Accept-Encoding: $e" \
      "http://127.0.0.1:$RP/data?size=64&unit=MiB" -o "$T/big.$e.$i" &
  done
done
wait_all() { local p; for p in $(jobs -p); do case " ${PIDS[*]} " in *" $p "*) ;; *) wait "$p";; esac; done; }
wait_all
rss1=$(rss)
for e in gzip br zstd; do
  is "64 MiB in $e (4 at once): decoded length" 67108864 "$(dec $e "$T/big.$e.1" | wc -c)"
  is "... only x" 0 "$(dec $e "$T/big.$e.1" | tr -d x | wc -c)"
done
# sanitizer builds keep freed memory in quarantine: COMPRESS_RSS_MAX_KB
# (e.g. ASAN_OPTIONS=quarantine_size_mb=4 and 131072)
RSS_MAX=${COMPRESS_RSS_MAX_KB:-65536}
ok "relais' RSS stayed bounded: 12 x 64 MiB compressed, grew by $(( (rss1 - rss0) / 1024 )) MiB (< $((RSS_MAX / 1024)))" \
  test $((rss1 - rss0)) -lt "$RSS_MAX"
# a client that leaves mid-body: the exchange's end (req_on_end) frees its
# encoder at once, with a DEBUG line; the other exchanges so far all got
# their last piece, so none of them logged it
early='cdef@file\] freed the br encoder of an exchange that ended early'
is "every compressed exchange so far ended normally: no encoder freed early" 0 \
  "$(grep -Ec "$early" "$T/relais.log")"
# 200 MiB asked; the client reads the head (Content-Encoding: br: the
# encoder exists), lets the body stream for 0.3 s, then aborts with a RST
# (SO_LINGER 0): "client gone" whatever it had read.  (A plain close may
# send a FIN, which relais takes for a half-close after a whole request:
# it answers on and notices the client is gone only when a later write
# fails.)
python3 - "$RP" >"$T/left.out" 2>&1 <<'EOF2'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /data?size=200&unit=MiB HTTP/1.1\r\nHost: def.test\r\nAccept-Encoding: br\r\n\r\n")
d = b""
while b"\r\n\r\n" not in d:
    b = s.recv(65536)
    if not b: break
    d += b
head = d.partition(b"\r\n\r\n")[0].lower()
print("head-br" if b"\r\ncontent-encoding: br" in head else "head-not-br", flush=True)
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("closed %.3f" % time.time(), flush=True)
EOF2
is "client leaving mid-body: it got a br-encoded head and some body first" head-br \
  "$(head -1 "$T/left.out")"
t_closed=$(sed -n 's/^closed //p' "$T/left.out")
ok "... its encoder freed by the exchange's end within 10 s (relais still running)" wait_log "$early" 10
t_freed=$(date +%s.%N)
echo "# encoder freed at most $(python3 -c "print('%.2f' % ($t_freed - ${t_closed:-$t_freed}))") s after the client closed"
is "... exactly one encoder freed early" 1 "$(grep -Ec "$early" "$T/relais.log")"
is "after a client left mid-stream: still serving" zstd \
  "$(fetch def.test '/data?size=5000' -H 'Accept-Encoding: zstd' >/dev/null; hval Content-Encoding)"

# ---- bad options: the middleware and its router disabled, key path logged
P='http\.middlewares\.bad[0-9]@file\.compress'
pat() { printf '%s' "${P/\[0-9\]/$1}"; }
ok "encodings: [gzip, lzma] -> unsupported encoding, with the item's path" \
  wait_log "middleware bad1@file disabled: $(pat 1)\.encodings\[1\]: unsupported encoding: lzma"
ok "encodings: [] -> at least one encoding" \
  wait_log "middleware bad2@file disabled: $(pat 2)\.encodings: at least one encoding must be specified"
ok "defaultEncoding not among encodings" \
  wait_log "middleware bad3@file disabled: $(pat 3)\.defaultEncoding: unsupported default encoding: zstd"
ok "both content-type lists -> mutually exclusive" \
  wait_log "middleware bad4@file disabled: $(pat 4)\.includedContentTypes: excludedContentTypes and includedContentTypes options are mutually exclusive"
ok "excludedContentTypes [text/plain, text/] -> the bad item's path" \
  wait_log "middleware bad5@file disabled: $(pat 5)\.excludedContentTypes\[1\]: parsing excluded media type"
ok "minResponseBodyBytes: lots -> wrong type" \
  wait_log "middleware bad6@file disabled: $(pat 6)\.minResponseBodyBytes: "
ok "level: 5 -> unknown option" \
  wait_log "middleware bad7@file disabled: $(pat 7)\.level: unknown option"
ok "compress: [gzip] -> expected a map" \
  wait_log "middleware bad8@file disabled: $(pat 8): expected a map"
ok "includedContentTypes [\"text/plain; charset\"] -> parsing included media type" \
  wait_log "middleware bad9@file disabled: $(pat 9)\.includedContentTypes\[0\]: parsing included media type"
for i in 1 2 3 4 5 6 7 8 9; do
  ok "router badr$i disabled (its middleware is)" wait_log "router badr$i@file disabled: .*bad$i@file"
done
is "bad1.test not served" 404 "$(fetch bad1.test /)"
is "the good routers still serve" gzip \
  "$(fetch def.test '/data?size=5000' -H 'Accept-Encoding: gzip' >/dev/null; hval Content-Encoding)"

t_done
