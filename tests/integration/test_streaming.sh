#!/usr/bin/env bash
# Streamed responses reach the client at once (Traefik's
# responseForwarding.flushInterval; relais never holds response bytes):
# server-sent events from whoami's /sse arrive one by one through relais,
# each within a fraction of the interval after the server sent it; a bad
# flushInterval disables the service with its key path.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "Bail out! python3 not installed"; exit 1; }
start_whoami w1; P1=$WHOAMI_PORT
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    sse: {rule: PathPrefix(\`/sse\`), service: s}
    bad: {rule: Host(\`bad.test\`), service: b}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
        responseForwarding: {flushInterval: 100ms}
    b:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
        responseForwarding: {flushInterval: soon}
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied" || { echo "Bail out! no configuration"; exit 1; }

# the arrival times (ms after the request) of the 4 events of
# /sse?count=4&interval=400, read from a raw socket
times=$(python3 - "$RP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
t0 = time.monotonic()
s.sendall(b"GET /sse?count=4&interval=400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
buf, seen, out = b"", 0, []
while seen < 4:
    d = s.recv(4096)
    if not d:
        break
    buf += d
    while buf.count(b"data: ") > seen:
        seen += 1
        out.append(int((time.monotonic() - t0) * 1000))
print(" ".join(map(str, out)))
PY
)
set -- $times
is "four events arrived" 4 "$#"
ok "the first event at once (${1:-?} ms)" test "${1:-9999}" -lt 250
ok "the second about 400 ms later, not held back (${2:-?} ms)" test "${2:-0}" -ge 300 -a "${2:-9999}" -lt 700
ok "the fourth about 1200 ms after the request (${4:-?} ms)" test "${4:-0}" -ge 1100 -a "${4:-9999}" -lt 1600
ok "a bad flushInterval disables its service with the key path" \
  wait_log 'service b@file disabled: http.services.b@file.loadBalancer.responseForwarding.flushInterval'
is "... and its router" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: bad.test' "http://127.0.0.1:$RP/")"
t_done
