#!/usr/bin/env bash
# test_whoami.sh — end-to-end tests of contrib/whoami (TAP output).
#
# usage: test_whoami.sh [path/to/whoami]      (default ./whoami)
# env:   WHOAMI_RSS_MAX_KB  RSS cap during the 1 GiB transfers (default 20480)
#        WHOAMI_SKIP_BIG=1  skip the 1 GiB download/upload
#
# Needs bash, curl, nc (netcat-openbsd), sha256sum, python3 (for the JSON
# and WebSocket checks; those are skipped without it). Starts whoami on
# random free loopback ports and kills everything it started on exit.
set -u

if [ -n "${RELAIS_BUILDDIR:-}" ]; then WHOAMI=${1:-$RELAIS_BUILDDIR/contrib/whoami/whoami}
else WHOAMI=${1:-./whoami}; fi
# under AddressSanitizer (make check of a sanitized build) shadow memory and
# the quarantine come on top of whoami's own few MiB
if [ "${RELAIS_SANITIZED:-no}" = yes ]; then RSS_MAX_KB=${WHOAMI_RSS_MAX_KB:-131072}
else RSS_MAX_KB=${WHOAMI_RSS_MAX_KB:-20480}; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/test_whoami.XXXXXX")
PIDS=()
N=0
FAILED=0
HAVE_PY=0
command -v python3 >/dev/null 2>&1 && HAVE_PY=1

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ok COND_EXIT_STATUS DESCRIPTION [DIAGNOSTIC...]
tap() {
	local rc=$1 desc=$2
	shift 2
	N=$((N + 1))
	if [ "$rc" -eq 0 ]; then
		echo "ok $N - $desc"
	else
		echo "not ok $N - $desc"
		FAILED=$((FAILED + 1))
		local d
		for d in "$@"; do
			printf '%s\n' "$d" | sed 's/^/#   /'
		done
	fi
}

# eq DESCRIPTION EXPECTED ACTUAL
eq() {
	if [ "$2" == "$3" ]; then
		tap 0 "$1"
	else
		tap 1 "$1" "expected: $(printf '%q' "$2")" "got:      $(printf '%q' "$3")"
	fi
}

# eqfile DESCRIPTION EXPECTED_FILE ACTUAL_FILE (byte-exact)
eqfile() {
	if cmp -s "$2" "$3"; then
		tap 0 "$1"
	else
		tap 1 "$1" "expected: $(od -c "$2" | head -20)" "got:      $(od -c "$3" | head -20)"
	fi
}

now_ms() { date +%s%3N; }

# start_whoami VAR_PREFIX ARGS... : start whoami on a random free port
# (retrying on bind failure); sets ${prefix}_PORT and ${prefix}_PID.
start_whoami() {
	local prefix=$1 port pid i try
	shift
	for try in $(seq 1 30); do
		port=$((18000 + RANDOM % 2000))
		"$WHOAMI" --port "$port" "$@" >"$T/$prefix.out" 2>"$T/$prefix.err" &
		pid=$!
		for i in $(seq 1 100); do
			if grep -q listening "$T/$prefix.out" 2>/dev/null; then
				PIDS+=("$pid")
				printf -v "${prefix}_PORT" '%s' "$port"
				printf -v "${prefix}_PID" '%s' "$pid"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		grep -q "in use" "$T/$prefix.err" || break
	done
	echo "Bail out! cannot start $WHOAMI $*: $(cat "$T/$prefix.err" 2>/dev/null)"
	exit 1
}

# raw PORT FILE_WITH_REQUEST OUTFILE : send bytes, collect the answer.
# netcat-openbsd without -q/-N keeps its write side open and exits when the
# server closes, so a hang (killed by timeout) means the server did not close.
raw() {
	timeout 10 nc 127.0.0.1 "$1" <"$2" >"$3" 2>/dev/null
}

[ -x "$WHOAMI" ] || { echo "Bail out! $WHOAMI not executable"; exit 1; }

start_whoami A --name alpha --log "$T/a.log"
P=$A_PORT
U="http://127.0.0.1:$P"
HOST=$(uname -n)

# ---------------------------------------------------------------- echo
curl -s -D "$T/h" -o "$T/b" -H 'User-Agent: tw' -H 'Accept:' -H 'X-Test:  v1 ' "$U/foo/bar?x=1&y=2"
eq "echo: status 200" "HTTP/1.1 200 OK" "$(head -1 "$T/h" | tr -d '\r')"
eq "echo: X-Whoami-Name" "alpha" "$(grep -i '^X-Whoami-Name:' "$T/h" | cut -d' ' -f2- | tr -d '\r')"
eq "echo: Content-Type" "text/plain; charset=utf-8" "$(grep -i '^Content-Type:' "$T/h" | cut -d' ' -f2- | tr -d '\r')"
eq "echo: Content-Length matches body" "$(wc -c <"$T/b" | tr -d ' ')" "$(grep -i '^Content-Length:' "$T/h" | cut -d' ' -f2 | tr -d '\r')"
RA=$(sed -n 's/^RemoteAddr: //p' "$T/b")
printf 'Name: alpha\nHostname: %s\nIP: 127.0.0.1\nRemoteAddr: %s\nGET /foo/bar?x=1&y=2 HTTP/1.1\nHost: 127.0.0.1:%s\nUser-Agent: tw\nX-Test: v1\n' \
	"$HOST" "$RA" "$P" >"$T/exp"
eqfile "echo: body bytes exact" "$T/exp" "$T/b"
[[ "$RA" =~ ^127\.0\.0\.1:[0-9]+$ ]]
tap $? "echo: RemoteAddr is ip:port ($RA)"

printf 'hello' >"$T/five"
curl -s -o "$T/b" -H 'Content-Type:' --data-binary @"$T/five" "$U/"
eq "echo: POST body counted" "Body-Length: 5" "$(tail -1 "$T/b")"
curl -s -o "$T/b" -H 'Transfer-Encoding: chunked' --data-binary @"$T/five" "$U/"
eq "echo: chunked body counted" "Body-Length: 5" "$(tail -1 "$T/b")"

curl -s -o "$T/b" -w '%{http_code}' "$U/?status=503" >"$T/code"
eq "?status=503: status" "503" "$(cat "$T/code")"
grep -q '^GET /?status=503 HTTP/1.1$' "$T/b"
tap $? "?status=503: echo body"
eq "?status=99: rejected" "400" "$(curl -s -o /dev/null -w '%{http_code}' "$U/?status=99")"
eq "HEAD /: no body" "0" "$(curl -s -I -o /dev/null -w '%{size_download}' "$U/")"

# ---------------------------------------------------------------- health
eq "/health: 200 OK" "200 OK" "$(curl -s -w '%{http_code} ' -o "$T/b" "$U/health")$(cat "$T/b")"
eq "POST /health 503" "200" "$(curl -s -o /dev/null -w '%{http_code}' --data-binary 503 "$U/health")"
eq "/health: now 503" "503 Service Unavailable" "$(curl -s -w '%{http_code} ' -o "$T/b" "$U/health")$(cat "$T/b")"
eq "HEAD /health: 503" "503" "$(curl -s -I -o /dev/null -w '%{http_code}' "$U/health")"
eq "POST /health bad" "400" "$(curl -s -o /dev/null -w '%{http_code}' --data-binary abc "$U/health")"
curl -s -o /dev/null --data-binary 200 "$U/health"
eq "/health: back to 200" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")"
eq "DELETE /health: 405" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U/health")"

# ---------------------------------------------------------------- bench
curl -s -D "$T/h" -o "$T/b" "$U/bench"
eq "/bench: body" "1" "$(cat "$T/b")"
eq "/bench: Content-Length" "1" "$(grep -i '^Content-Length:' "$T/h" | cut -d' ' -f2 | tr -d '\r')"

# ---------------------------------------------------------------- data
curl -s -D "$T/h" -o "$T/b" "$U/data?size=100000"
eq "/data: Content-Length" "100000" "$(grep -i '^Content-Length:' "$T/h" | cut -d' ' -f2 | tr -d '\r')"
eq "/data: byte count" "100000" "$(wc -c <"$T/b" | tr -d ' ')"
eq "/data: only 'x'" "0" "$(tr -d x <"$T/b" | wc -c | tr -d ' ')"
curl -s -D "$T/h" -o "$T/b" "$U/data?size=100000&chunked=1"
grep -qi '^Transfer-Encoding: chunked' "$T/h"
tap $? "/data chunked: Transfer-Encoding"
! grep -qi '^Content-Length' "$T/h"
tap $? "/data chunked: no Content-Length"
eq "/data chunked: decoded count" "100000" "$(wc -c <"$T/b" | tr -d ' ')"
eq "/data chunked: only 'x'" "0" "$(tr -d x <"$T/b" | wc -c | tr -d ' ')"
eq "/data?size=2&unit=KiB" "2048" "$(curl -s -o /dev/null -w '%{size_download}' "$U/data?size=2&unit=KiB")"
eq "/data without size: 400" "400" "$(curl -s -o /dev/null -w '%{http_code}' "$U/data")"

# ---------------------------------------------------------------- api
curl -s -D "$T/h" -o "$T/b" -H 'X-Multi: a' -H 'X-Multi: b' -H 'X-Q: "q\u' "$U/api?k=v"
eq "/api: Content-Type" "application/json" "$(grep -i '^Content-Type:' "$T/h" | cut -d' ' -f2- | tr -d '\r')"
if [ $HAVE_PY = 1 ]; then
	python3 - "$T/b" "$P" "$HOST" >"$T/py" 2>&1 <<'EOF'
import json, sys
d = json.loads(open(sys.argv[1], 'rb').read())
assert d["hostname"] == sys.argv[3], d
assert d["ip"] == ["127.0.0.1"], d
assert d["url"] == "/api?k=v", d
assert d["host"] == "127.0.0.1:" + sys.argv[2], d
assert d["method"] == "GET", d
assert d["name"] == "alpha", d
assert d["headers"]["X-Multi"] == ["a", "b"], d
assert d["headers"]["X-Q"] == ['"q\\u'], d
EOF
	tap $? "/api: JSON fields" "$(cat "$T/py")"
else
	grep -q '"url":"/api?k=v"' "$T/b"
	tap $? "/api: JSON fields (grep)"
fi

# ---------------------------------------------------------------- wait
t0=$(now_ms)
c=$(curl -s -o /dev/null -w '%{http_code}' "$U/bench?wait=200ms")
t1=$(now_ms)
[ "$c" = 200 ] && [ $((t1 - t0)) -ge 200 ]
tap $? "?wait=200ms: 200 after >= 200 ms ($((t1 - t0)) ms)"
eq "?wait=bogus: 400" "400" "$(curl -s -o /dev/null -w '%{http_code}' "$U/?wait=bogus")"

# ---------------------------------------------------------------- upload
head -c 10485760 /dev/urandom >"$T/up"
SUM=$(sha256sum "$T/up" | cut -d' ' -f1)
eq "/upload 10 MiB (Content-Length)" "received 10485760 bytes sha256=$SUM" \
	"$(curl -s -H 'Content-Type:' --data-binary @"$T/up" "$U/upload")"
eq "/upload 10 MiB (chunked)" "received 10485760 bytes sha256=$SUM" \
	"$(curl -s -H 'Transfer-Encoding: chunked' -H 'Content-Type:' --data-binary @"$T/up" "$U/upload")"
t0=$(now_ms)
r=$(curl -s -H 'Expect: 100-continue' -H 'Content-Type:' --data-binary @"$T/five" "$U/upload")
t1=$(now_ms)
[ "$r" = "received 5 bytes sha256=$(sha256sum "$T/five" | cut -d' ' -f1)" ] && [ $((t1 - t0)) -lt 900 ]
tap $? "Expect: 100-continue answered at once ($((t1 - t0)) ms)" "$r"
eq "GET /upload: 405" "405" "$(curl -s -o /dev/null -w '%{http_code}' "$U/upload")"

# ---------------------------------------------------------------- wire level
printf 'GET /bench HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/req"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nX-Whoami-Name: alpha\r\nConnection: close\r\n\r\nOK' >"$T/exp"
raw "$P" "$T/req" "$T/got"
eqfile "pipelining: two responses in order, then close" "$T/exp" "$T/got"

printf 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /bench?wait=50ms HTTP/1.1\r\nHost: a\r\n\r\nGET /data?size=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/req"
raw "$P" "$T/req" "$T/got"
SUM3=$(printf abc | sha256sum | cut -d' ' -f1)
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 89\r\nX-Whoami-Name: alpha\r\n\r\nreceived 3 bytes sha256=%s\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nX-Whoami-Name: alpha\r\nConnection: close\r\n\r\nxxx' "$SUM3" >"$T/exp"
eqfile "pipelining: body, delayed and streamed responses in order" "$T/exp" "$T/got"

printf 'GET /bench HTTP/1.0\r\n\r\n' >"$T/req"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\nConnection: close\r\n\r\n1' >"$T/exp"
t0=$(now_ms)
timeout 5 nc 127.0.0.1 "$P" <"$T/req" >"$T/got" 2>/dev/null
t1=$(now_ms)
eqfile "HTTP/1.0: Connection: close" "$T/exp" "$T/got"
[ $((t1 - t0)) -lt 4000 ]
tap $? "HTTP/1.0: server closes ($((t1 - t0)) ms)"

printf 'GET /bench HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /bench HTTP/1.0\r\n\r\n' >"$T/req"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\nConnection: keep-alive\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\nConnection: close\r\n\r\n1' >"$T/exp"
raw "$P" "$T/req" "$T/got"
eqfile "HTTP/1.0 keep-alive" "$T/exp" "$T/got"

# malformed requests: 400 (or the stated status) and close
bad() {
	local desc=$1 status=$2
	printf "$3" >"$T/req"
	raw "$P" "$T/req" "$T/got"
	local line
	line=$(head -1 "$T/got" | tr -d '\r')
	if [ "$line" = "HTTP/1.1 $status $4" ] && grep -q '^Connection: close' "$T/got"; then
		tap 0 "malformed: $desc -> $status"
	else
		tap 1 "malformed: $desc -> $status" "got: $(head -c 300 "$T/got")"
	fi
}
bad "space before colon" 400 'GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n' "Bad Request"
bad "no Host in HTTP/1.1" 400 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n' "Bad Request"
bad "two Host" 400 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' "Bad Request"
bad "CL and TE" 400 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' "Bad Request"
bad "conflicting CL" 400 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd' "Bad Request"
bad "bad CL" 400 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n' "Bad Request"
bad "bad chunk size" 400 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' "Bad Request"
bad "missing chunk CRLF" 400 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n' "Bad Request"
bad "gzip TE" 501 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' "Not Implemented"
bad "obs-fold" 400 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n' "Bad Request"
bad "bare LF" 400 'GET / HTTP/1.1\nHost: a\r\n\r\n' "Bad Request"
bad "HTTP/2.0" 505 'GET / HTTP/2.0\r\nHost: a\r\n\r\n' "HTTP Version Not Supported"
bad "garbage" 400 'hello\r\n\r\n' "Bad Request"
bad "Expect: other" 417 'GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n' "Expectation Failed"

printf 'HEAD /data?size=5 HTTP/1.1\r\nHost: a\r\n\r\nGET /bench HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/req"
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nX-Whoami-Name: alpha\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nX-Whoami-Name: alpha\r\nConnection: close\r\n\r\n1' >"$T/exp"
raw "$P" "$T/req" "$T/got"
eqfile "HEAD /data then GET on one connection" "$T/exp" "$T/got"

{ printf 'GET / HTTP/1.1\r\nHost: a\r\nX-Big: '; head -c 70000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$T/req"
raw "$P" "$T/req" "$T/got"
eq "request head > 64 KiB: 431" "HTTP/1.1 431 Request Header Fields Too Large" "$(head -1 "$T/got" | tr -d '\r')"

printf 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n' >"$T/req"
raw "$P" "$T/req" "$T/got"
grep -q '^Body-Length: 3$' "$T/got"
tap $? "chunked with extension and trailer"

# a client that pipelines 20001 requests (half of them 3000-byte /data
# streams) before reading: the server must stop reading and producing
# (back-pressure) and answer all of them, in order, byte-exact
if [ $HAVE_PY = 1 ]; then
	python3 - "$P" >"$T/py" 2>&1 <<'EOF'
import socket, sys, time
n = 10000
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # small: force back-pressure
s.connect(("127.0.0.1", int(sys.argv[1])))
data = (b"GET /bench HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /data?size=3000 HTTP/1.1\r\nHost: a\r\n\r\n") * n
data += b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
exp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
       b"X-Whoami-Name: alpha\r\n\r\n1"
       b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3000\r\n"
       b"X-Whoami-Name: alpha\r\n\r\n" + b"x" * 3000) * n
exp += (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
        b"X-Whoami-Name: alpha\r\nConnection: close\r\n\r\nOK")
s.setblocking(False)
sent = 0
t = time.time()
while sent < len(data) and time.time() - t < 0.5:   # until the pipes are full
    try:
        sent += s.send(data[sent:])
    except BlockingIOError:
        time.sleep(0.01)
s.setblocking(True)
s.settimeout(20)
out = bytearray()
while True:
    if sent < len(data):
        sent += s.send(data[sent:sent + 65536])
    d = s.recv(1 << 20)
    if not d:
        break
    out += d
assert sent == len(data)
assert len(out) == len(exp), (len(out), len(exp))
assert out == exp, "bytes differ"
print("flood ok, %d bytes" % len(out))
EOF
	tap $? "pipelining flood: 20001 requests answered in order" "$(cat "$T/py")"
fi

# ---------------------------------------------------------------- sse
t0=$(now_ms)
curl -s -D "$T/h" -o "$T/b" "$U/sse?count=3&interval=50"
t1=$(now_ms)
printf 'data: 1\n\ndata: 2\n\ndata: 3\n\n' >"$T/exp"
eqfile "/sse: three events" "$T/exp" "$T/b"
grep -qi '^Content-Type: text/event-stream' "$T/h" && [ $((t1 - t0)) -ge 100 ]
tap $? "/sse: event-stream, paced ($((t1 - t0)) ms)"

# ---------------------------------------------------------------- websocket
eq "/echo without Upgrade: 400" "400" "$(curl -s -o /dev/null -w '%{http_code}' "$U/echo")"
if [ $HAVE_PY = 1 ]; then
	python3 - "$P" >"$T/py" 2>&1 <<'EOF'
import base64, hashlib, os, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    assert d, "closed during handshake"
    buf += d
head, buf = buf.split(b"\r\n\r\n", 1)
lines = head.decode().split("\r\n")
assert lines[0] == "HTTP/1.1 101 Switching Protocols", lines
hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
assert hdr["sec-websocket-accept"] == acc, hdr
assert hdr["upgrade"].lower() == "websocket" and hdr["x-whoami-name"] == "alpha", hdr

def send(op, payload, fin=True):
    m = os.urandom(4)
    n = len(payload)
    h = bytes([(0x80 if fin else 0) | op])
    if n < 126: h += bytes([0x80 | n])
    elif n < 65536: h += bytes([0x80 | 126]) + struct.pack("!H", n)
    else: h += bytes([0x80 | 127]) + struct.pack("!Q", n)
    s.sendall(h + m + bytes(b ^ m[i & 3] for i, b in enumerate(payload)))

def recv_exact(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        assert d, "closed"
        buf += d
    r, buf = buf[:n], buf[n:]
    return r

def recv():
    b0, b1 = recv_exact(2)
    assert not (b1 & 0x80), "server frame masked"
    n = b1 & 0x7f
    if n == 126: n = struct.unpack("!H", recv_exact(2))[0]
    elif n == 127: n = struct.unpack("!Q", recv_exact(8))[0]
    return b0, recv_exact(n)

send(1, b"hello ws")
assert recv() == (0x81, b"hello ws")
send(9, b"pi")
assert recv() == (0x8a, b"pi")
big = os.urandom(1 << 20)
send(2, big)
assert recv() == (0x82, big), "1 MiB binary frame"
send(1, b"frag-", fin=False)
send(0, b"ment")
assert recv() == (0x01, b"frag-") and recv() == (0x80, b"ment")
send(8, struct.pack("!H", 1000) + b"bye")
assert recv() == (0x88, struct.pack("!H", 1000))
assert s.recv(10) == b"", "not closed after close frame"
print("ws ok")
EOF
	tap $? "WebSocket: handshake, text, ping, 1 MiB binary, fragments, close" "$(cat "$T/py")"
fi

# ---------------------------------------------------------------- log
grep -qx 'GET /foo/bar?x=1&y=2' "$T/a.log" && grep -qx 'POST /upload' "$T/a.log" &&
	grep -qx 'GET /echo' "$T/a.log" && ! grep -q 'X-A : b' "$T/a.log"
tap $? "--log: request lines"

start_whoami B --name beta --delay 150 --log "$T/b.log"
t0=$(now_ms)
c=$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$B_PORT/bench")
t1=$(now_ms)
[ "$c" = 200 ] && [ $((t1 - t0)) -ge 150 ]
tap $? "--delay 150: delayed ($((t1 - t0)) ms)"
eq "second instance: X-Whoami-Name" "beta" "$(grep -i '^X-Whoami-Name:' "$T/h" | cut -d' ' -f2- | tr -d '\r')"
curl -s -o /dev/null -X PUT --data-binary x "http://127.0.0.1:$B_PORT/a%20b?q"
printf 'GET /bench\nPUT /a%%20b?q\n' >"$T/exp"
eqfile "--log: exact file" "$T/exp" "$T/b.log"

# ---------------------------------------------------------------- threads, unix, ipv6
start_whoami C --threads 3 --name gamma
ok=0
for i in $(seq 1 12); do
	[ "$(curl -s "http://127.0.0.1:$C_PORT/bench")" = 1 ] || ok=1
done
tap $ok "--threads 3: requests answered"

"$WHOAMI" --unix "$T/sock" --name delta >"$T/u.out" 2>"$T/u.err" &
PIDS+=($!)
for i in $(seq 1 100); do grep -q listening "$T/u.out" && break; sleep 0.05; done
eq "--unix: echo over a Unix socket" "Name: delta" "$(curl -s --unix-socket "$T/sock" http://x/ | head -1)"

if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
	start_whoami D --addr ::1
	eq "--addr ::1: IP line" "IP: ::1" "$(curl -s -g "http://[::1]:$D_PORT/" | grep '^IP:')"
else
	echo "ok $((N + 1)) # SKIP no IPv6 loopback"
	N=$((N + 1))
fi

# ---------------------------------------------------------------- 1 GiB, memory bounded
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }
if [ "${WHOAMI_SKIP_BIG:-0}" = 1 ] || [ ! -r "/proc/$A_PID/status" ]; then
	echo "ok $((N + 1)) # SKIP 1 GiB download"
	echo "ok $((N + 2)) # SKIP 1 GiB upload"
	N=$((N + 2))
else
	max=0
	curl -s -o /dev/null -w '%{size_download}' "$U/data?size=1073741824" >"$T/size" &
	cp=$!
	while kill -0 "$cp" 2>/dev/null; do
		r=$(rss_kb "$A_PID")
		[ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
		sleep 0.02
	done
	wait "$cp"
	[ "$(cat "$T/size")" = 1073741824 ] && [ "$max" -lt "$RSS_MAX_KB" ]
	tap $? "1 GiB download: $(cat "$T/size") bytes, max RSS ${max} kB < ${RSS_MAX_KB} kB"

	max=0
	exp="received 1073741824 bytes sha256=49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"
	head -c 1073741824 /dev/zero | curl -s -T - -H 'Content-Type:' "$U/upload" >"$T/up.out" &
	cp=$!
	while kill -0 "$cp" 2>/dev/null; do
		r=$(rss_kb "$A_PID")
		[ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
		sleep 0.02
	done
	wait "$cp"
	[ "$(cat "$T/up.out")" = "$exp" ] && [ "$max" -lt "$RSS_MAX_KB" ]
	tap $? "1 GiB chunked upload: sha256 ok, max RSS ${max} kB < ${RSS_MAX_KB} kB" "$(cat "$T/up.out")"
fi

# still alive after all of this?
eq "server still answers" "1" "$(curl -s "$U/bench")"

# graceful shutdown (SIGTERM): exit status 0, nothing on stderr (this is
# where AddressSanitizer/UBSan/LeakSanitizer reports land)
ok=0
diag=()
for p in "${PIDS[@]}"; do
	kill -TERM "$p" 2>/dev/null
	wait "$p"
	rc=$?
	[ "$rc" -eq 0 ] || { ok=1; diag+=("pid $p exited with $rc"); }
done
PIDS=()
for f in "$T"/*.err; do
	if [ -s "$f" ]; then
		ok=1
		diag+=("$f: $(head -c 2000 "$f")")
	fi
done
tap $ok "SIGTERM: clean exit, empty stderr (no sanitizer report)" "${diag[@]}"

echo "1..$N"
[ "$FAILED" -eq 0 ]
