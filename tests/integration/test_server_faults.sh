#!/usr/bin/env bash
# test_server_faults.sh — what a client sees when the server behind relais
# misbehaves.  The servers are Python socket programs ($T/srv.py, one
# process per behaviour, exact bytes) that log every connection and every
# request head they get; the client is curl (statuses, headers, bodies,
# exit codes, bounded by --max-time).
#   (a) a server killed (SIGKILL) in the middle of a Content-Length or a
#       chunked body: the client sees the cut (curl 18), never a hang;
#   (b) a server that resets the connection (SO_LINGER 0) before any
#       response byte: 502 "Bad Gateway";
#   (c) a server slower than forwardingTimeouts.responseHeaderTimeout:
#       504 "Gateway Timeout", in about that time;
#   (d) a pooled keep-alive connection the server closed: a FIN while idle
#       (relais drops it) and a close that races the next request (relais
#       wrote the request, then got EOF): a GET is retried once on a new
#       connection and gets 200 (the server sees exactly 2 connections); a
#       POST whose body was sent is not retried: 502, no second connection
#       (the rule of px_up_event in src/proxy.c);
#   (e) a server answering with bad framing (two different Content-Length,
#       Content-Length with Transfer-Encoding, "chunked" twice): 502, and
#       the next request goes to a new connection (the bad one is never
#       reused); an invalid chunk size after a good head: the head is
#       already relayed, the client sees a cut (no last chunk), and that
#       connection is not reused either.
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null 2>&1; then
  echo "Bail out! python3 not found (CI installs it: see tests/run.sh)"
  exit 1
fi

# srv.py PORT MODE LOG: one misbehaving server (see MODE below).  LOG gets
# "accept N" per connection and "conn N METHOD TARGET BODYLEN" per request.
cat >"$T/srv.py" <<'EOF'
import os, signal, socket, struct, sys, threading, time

port, mode, logf = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
nconn = 0


def log(line):
    with lock, open(logf, "a") as f:
        f.write(line + "\n")


def read_request(s, buf):
    """One request (head + Content-Length body) from s: (method, target,
    body, rest) or None at EOF/error."""
    while b"\r\n\r\n" not in buf:
        try:
            b = s.recv(65536)
        except OSError:
            return None
        if not b:
            return None
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    method, target = lines[0].split(b" ")[:2]
    cl = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v.strip())
    while len(rest) < cl:
        try:
            b = s.recv(65536)
        except OSError:
            return None
        if not b:
            return None
        rest += b
    return method.decode(), target.decode(), rest[:cl], rest[cl:]


def ok(body, close=False):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), b"Connection: close\r\n" if close else b"", body))


BAD = {
    "/cl2": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "/clte": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\n",
    "/te2": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n",
    "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
}
# the head first, the bad chunk size 0.3 s later (the head was relayed)
LATE = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"zz\r\nhello\r\n0\r\n\r\n"


def serve(s, n):
    buf = b""
    k = 0  # requests on this connection
    while True:
        req = read_request(s, buf)
        if req is None:
            log("eof %d" % n)
            return
        method, target, body, buf = req
        k += 1
        log("conn %d %s %s %d" % (n, method, target, len(body)))
        if mode == "killcl":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "killchunked":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n")
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return
        elif mode == "slow":
            time.sleep(3)
            try:
                s.sendall(ok(b"late"))
            except OSError:
                pass
        elif mode == "idlefin":
            # answers, then closes the idle keep-alive connection
            s.sendall(ok(b"conn %d" % n))
            time.sleep(0.2)
            s.close()
            log("closed %d" % n)
            return
        elif mode == "race":
            # the first request is answered and the connection kept; the
            # next one on it is dropped unanswered (the server closed the
            # idle connection just as relais reused it)
            if k == 1:
                s.sendall(ok(b"conn %d" % n))
            else:
                s.close()
                log("dropped %d" % n)
                return
        elif mode == "framing":
            if target in BAD:
                s.sendall(BAD[target])  # and keep the connection open
            elif target == "/badchunk-late":
                s.sendall(LATE[0])
                time.sleep(0.3)
                s.sendall(LATE[1])
            else:
                s.sendall(ok(b"conn %d" % n))


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    nconn += 1
    log("accept %d" % nconn)
    threading.Thread(target=serve, args=(c, nconn), daemon=True).start()
EOF

# server NAME MODE: starts srv.py in MODE on a free port (PORT_OF[NAME]);
# its log is $T/NAME.log.  Readiness is its "ready" line, not a connect
# (which the server would count).
declare -A PORT_OF
server() {
  local port
  port=$(free_port)
  : >"$T/$1.log"
  python3 "$T/srv.py" "$port" "$2" "$T/$1.log" >"$T/$1.out" 2>&1 &
  PIDS+=($!)
  disown $!  # the killed ones: no "Killed" job message
  PORT_OF[$1]=$port
}

for s in killcl:killcl killchunked:killchunked reset:reset slow:slow \
         idlefin:idlefin race:race racepost:race framing:framing; do
  server "${s%%:*}" "${s##*:}"
done
for s in "${!PORT_OF[@]}"; do
  for _ in $(seq 1 100); do grep -q ready "$T/$s.out" && break; sleep 0.05; done
  grep -q ready "$T/$s.out" || { echo "Bail out! server $s did not start"; exit 1; }
done

RP=$(free_port)
{
  echo "http:"
  echo "  routers:"
  for s in "${!PORT_OF[@]}"; do
    printf '    %s:\n      rule: "Host(`%s.test`)"\n      service: %s\n' "$s" "$s" "$s"
  done
  echo "  services:"
  for s in "${!PORT_OF[@]}"; do
    printf '    %s:\n      loadBalancer:\n        servers:\n          - url: "http://127.0.0.1:%s"\n' \
      "$s" "${PORT_OF[$s]}"
  done
} >"$T/dyn.yaml"
# one worker: one upstream pool, so that "the next request" meets the
# connection the previous one left
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml" "serversTransport:
  forwardingTimeouts:
    responseHeaderTimeout: 1s"
sed -i 's/^workers: 2$/workers: 1/' "$T/relais.yaml"
start_relais "$T/relais.yaml" "$RP" || {
  echo "Bail out! relais did not start"; sed 's/^/# /' "$T/relais.log"; exit 1; }
wait_log "configuration [0-9]+ applied: ${#PORT_OF[@]} routers" 5 ||
  echo "# relais did not log the configuration with ${#PORT_OF[@]} routers"

# req NAME HOST PATH [CURL-ARGS...]: one request through relais; sets
# RC (curl's exit code), CODE (status), HDRS (the response head, CRs
# removed), BODY, MS (elapsed milliseconds).
req() {
  local name=$1 host=$2 path=$3 t0; shift 3
  t0=$(date +%s%N)
  : >"$T/$name.body"
  curl -sS -o "$T/$name.body" -D "$T/$name.hdr" -w '%{http_code}' --max-time 5 \
    -H "Host: $host" "$@" "http://127.0.0.1:$RP$path" >"$T/$name.code" 2>"$T/$name.err"
  RC=$?
  MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  CODE=$(cat "$T/$name.code")
  HDRS=$(tr -d '\r' <"$T/$name.hdr")
  BODY=$(cat "$T/$name.body")
}

# hdr NAME: the value of response header NAME of the last req (first one).
hdr() { printf '%s\n' "$HDRS" | sed -n "s/^$1: //Ip" | head -1; }

# conns NAME: connections the server NAME accepted so far.
conns() { grep -c '^accept ' "$T/$1.log"; }

# ---- (a) server killed in the middle of the body
req killcl killcl.test /cl
is "(a) CL body cut: curl exit 18 (partial file)" 18 "$RC"
is "(a) CL body cut: the head was relayed (200)" 200 "$CODE"
is "(a) CL body cut: Content-Length 100 relayed" 100 "$(hdr Content-Length)"
is "(a) CL body cut: the 10 bytes sent before the kill reached the client" 0123456789 "$BODY"
ok "(a) CL body cut: no hang (${MS} ms < 4000)" test "$MS" -lt 4000

req killchunked killchunked.test /chunked
is "(a) chunked body cut: curl exit 18 (no last chunk, connection closed)" 18 "$RC"
is "(a) chunked body cut: the head was relayed (200)" 200 "$CODE"
is "(a) chunked body cut: relayed chunked" chunked "$(hdr Transfer-Encoding)"
is "(a) chunked body cut: the chunk sent before the kill reached the client" abcde "$BODY"
ok "(a) chunked body cut: no hang (${MS} ms < 4000)" test "$MS" -lt 4000

# ---- (b) reset before any response byte
req reset reset.test /reset
is "(b) reset before the response: 502" 502 "$CODE"
is "(b) reset before the response: body 'Bad Gateway'" "Bad Gateway" "$BODY"
is "(b) reset before the response: text/plain" "text/plain; charset=utf-8" "$(hdr Content-Type)"
is "(b) reset before the response: Content-Length 11" 11 "$(hdr Content-Length)"
is "(b) the server got the request once (a fresh connection is not retried)" 1 \
  "$(grep -c '^conn .* GET /reset' "$T/reset.log")"

# ---- (c) slower than responseHeaderTimeout (1 s); the server answers at 3 s
req slow slow.test /slow
is "(c) slow server: 504" 504 "$CODE"
is "(c) slow server: body 'Gateway Timeout'" "Gateway Timeout" "$BODY"
ok "(c) slow server: answered after about 1 s (${MS} ms in 900..2500)" \
  test "$MS" -ge 900 -a "$MS" -le 2500

# ---- (d) pooled connections the server closed
req idle1 idlefin.test /one
is "(d) FIN while idle: first request 200 'conn 1'" "200 conn 1" "$CODE $BODY"
for _ in $(seq 1 40); do grep -q '^closed 1' "$T/idlefin.log" && break; sleep 0.05; done
sleep 0.2
req idle2 idlefin.test /two
is "(d) FIN while idle: next GET 200 from a new connection" "200 conn 2" "$CODE $BODY"
is "(d) FIN while idle: the server saw exactly 2 connections" 2 "$(conns idlefin)"

req race1 race.test /one
is "(d) race: first GET 200 'conn 1'" "200 conn 1" "$CODE $BODY"
req race2 race.test /two
is "(d) race: the GET on the dropped connection is retried: 200 'conn 2'" \
  "200 conn 2" "$CODE $BODY"
is "(d) race: the server saw exactly 2 connections" 2 "$(conns race)"
is "(d) race: the GET reached the server twice (dropped, then answered)" \
  "conn 1 GET /two 0|conn 2 GET /two 0" \
  "$(grep ' /two ' "$T/race.log" | paste -sd'|')"

req rpost1 racepost.test /one
is "(d) race POST: first GET 200 'conn 1'" "200 conn 1" "$CODE $BODY"
req rpost2 racepost.test /post --data-binary hello
is "(d) race POST with a body: not retried, 502" 502 "$CODE"
is "(d) race POST with a body: body 'Bad Gateway'" "Bad Gateway" "$BODY"
is "(d) race POST with a body: no second connection" 1 "$(conns racepost)"
is "(d) race POST with a body: the server got it once" 1 \
  "$(grep -c ' POST /post 5$' "$T/racepost.log")"

# ---- (e) bad framing from the server: 502, the connection never reused
# bad_conn CASE: the server connection that carried GET /CASE.
bad_conn() { awk -v t="/$1" '$1 == "conn" && $4 == t { print $2; exit }' "$T/framing.log"; }

# bad_verdict CASE: the connection that carried /CASE carried nothing
# after it and was closed by relais; the request after it came on a new
# one (the last request was /after-CASE, answered "conn N").
bad_verdict() {
  local bad
  bad=$(bad_conn "$1")
  is "(e) $1: the next request comes on a new connection" \
    "200 conn $((bad + 1))" "$CODE $BODY"
  is "(e) $1: nothing was sent on the bad connection after it" \
    "conn $bad GET /$1 0" "$(grep "^conn $bad " "$T/framing.log" | tail -1)"
  for _ in $(seq 1 40); do grep -q "^eof $bad\$" "$T/framing.log" && break; sleep 0.05; done
  ok "(e) $1: relais closed the bad connection" grep -q "^eof $bad\$" "$T/framing.log"
}

# same-packet framing errors: nothing has reached the client yet: 502
for case in cl2 clte te2 badchunk; do
  req "f_$case" framing.test "/$case"
  is "(e) $case: 502" 502 "$CODE"
  is "(e) $case: body 'Bad Gateway'" "Bad Gateway" "$BODY"
  req "f_${case}_next" framing.test "/after-$case"
  bad_verdict "$case"
done

# a bad chunk size after the head was relayed: the client sees a cut
req f_late framing.test /badchunk-late
is "(e) late bad chunk size: the head was relayed (200, chunked)" "200 chunked" \
  "$CODE $(hdr Transfer-Encoding)"
is "(e) late bad chunk size: the client sees the cut (curl 18)" 18 "$RC"
is "(e) late bad chunk size: no body byte reached the client" "" "$BODY"
ok "(e) late bad chunk size: no hang (${MS} ms < 4000)" test "$MS" -lt 4000
req f_late_next framing.test /after-badchunk-late
bad_verdict badchunk-late

ok "relais is still running" kill -0 "$RELAIS_PID"
stop_relais_clean
if [ "$TAP_FAILED" -ne 0 ]; then
  for f in "$T"/*.log; do
    [ "$(basename "$f")" = relais.log ] && continue
    echo "# $(basename "$f"): $(paste -sd'|' "$f")"
  done
  echo "# relais log (warnings, last 20):"
  grep -v ' INF ' "$T/relais.log" | tail -20 | sed 's/^/#   /'
fi
t_done
