#!/usr/bin/env bash
# test_slowhttp.sh — slow HTTP denial-of-service attacks (slowhttptest)
# against relais in front of whoami, on an entry point with short
# respondingTimeouts:
#   slowloris, silent  (-H -i 4): head bytes stop for longer than
#                      headerTimeout: cut at headerTimeout;
#   slowloris, drip    (-H -i 1): a few head bytes every second, never a
#                      whole head: headerTimeout is a deadline for the whole
#                      head (as Go's ReadHeaderTimeout), cut all the same;
#   slow body          (-B -i 1): the head, then the body a few bytes a
#                      second: cut at readTimeout (a deadline for the body);
#   slow read          (-X): a 32 MiB download read 32 bytes a second
#                      through a 512-1024 byte window: cut at writeTimeout.
# During each attack a probe sends a request through relais every 100 ms
# on a new connection (2 s deadline): every probe must be a 200 carrying
# the whoami echo.  slowhttptest's own verdict ("service available" every
# 5 s on stdout, the per-second column of its CSV) must say YES
# throughout.  "Cut" is measured on relais' side: the ESTABLISHED sockets
# whose local port is relais' port (ss, else /proc/net/tcp), sampled every 0.25 s;
# once every attack connection exists and its timeout plus a margin has
# passed, none may be left (the probe's own at most).  For slowloris and
# slow body slowhttptest must also end with "No open connections left".
# Needs slowhttptest (Debian package slowhttptest) and python3.
. "$(dirname "$0")/lib.sh"

for cmd in slowhttptest python3; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "Bail out! $cmd not found (CI installs it: see tests/run.sh)"
    exit 1
  fi
done

HEAD_S=2    # headerTimeout
READ_S=3    # readTimeout
WRITE_S=3   # writeTimeout
MARGIN_S=3  # slack after a timeout before a connection must be gone (ASan, load)
CONNS=500   # attack connections (slowloris, slow body)
RCONNS=150  # slow read: each pins ~3 MiB of kernel send buffer; 500 would
            # push the whole host's TCP memory into pressure
RATE=200    # new attack connections per second

start_whoami w1 || { echo "Bail out! whoami did not start"; exit 1; }
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: w1
  services:
    w1:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$WHOAMI_PORT"
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
    transport:
      respondingTimeouts:
        headerTimeout: ${HEAD_S}s
        readTimeout: ${READ_S}s
        writeTimeout: ${WRITE_S}s
        idleTimeout: 5s
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
log:
  level: INFO
workers: 2
EOF
start_relais "$T/relais.yaml" "$RP" || {
  echo "Bail out! relais did not start"; sed 's/^/# /' "$T/relais.log"; exit 1; }

# The probe: one GET per 100 ms on a new connection, 2 s deadline each,
# until the stop file appears (or MAX seconds).  Writes "N FAILED" on the
# first line of OUT, then one line per failure.
cat >"$T/probe.py" <<'EOF'
import os, socket, sys, time

port, out, stop, maxdur = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
n = failed = 0
notes = []
end = time.time() + maxdur
while time.time() < end and not os.path.exists(stop):
    t = time.time()
    n += 1
    want = b"GET /probe?n=%d HTTP/1.1" % n
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        try:
            s.sendall(b"GET /probe?n=%d HTTP/1.1\r\nHost: probe.test\r\n"
                      b"Connection: close\r\n\r\n" % n)
            data = b""
            while True:
                left = t + 2 - time.time()
                if left <= 0:
                    raise TimeoutError("no complete answer within 2 s")
                s.settimeout(left)
                b = s.recv(65536)
                if not b:
                    break
                data += b
        finally:
            s.close()
        line = data.split(b"\r\n", 1)[0]
        if line != b"HTTP/1.1 200 OK" or want not in data:
            failed += 1
            notes.append("probe %d at +%.2fs: %r" % (n, t - end + maxdur, data[:80]))
    except Exception as e:
        failed += 1
        notes.append("probe %d at +%.2fs: %s" % (n, t - end + maxdur, e))
    rest = t + 0.1 - time.time()
    if rest > 0:
        time.sleep(rest)
with open(out, "w") as f:
    f.write("%d %d\n" % (n, failed))
    for x in notes[:20]:
        f.write(x + "\n")
EOF

# est_count: ESTABLISHED TCP sockets whose local port is relais' port
# (ss filters in the kernel; /proc/net/tcp is the fallback).
RP_HEX=$(printf '%04X' "$RP")
est_count() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htn state established "( sport = :$RP )" | wc -l
  else
    awk -v p=":$RP_HEX" '$4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' \
      /proc/net/tcp
  fi
}

# sampler STOPFILE OUT: every 0.25 s "MS COUNT" (ms since the start).
sampler() {
  local t0 i
  t0=$(date +%s%N)
  for ((i = 0; i < 240; i++)); do
    [ -e "$1" ] && break
    echo "$(( ($(date +%s%N) - t0) / 1000000 )) $(est_count)" >>"$2"
    sleep 0.25
  done
}

# attack NAME LEN SLOWHTTPTEST-ARGS...: runs slowhttptest for at most LEN
# seconds (-l) with the probe and the sampler alongside; results in
# $T/NAME.{out,csv,probe,samples}.
attack() {
  local name=$1 len=$2 ppid spid; shift 2
  rm -f "$T/stop"
  : >"$T/$name.samples"
  python3 "$T/probe.py" "$RP" "$T/$name.probe" "$T/stop" $((len + 10)) &
  ppid=$!
  sampler "$T/stop" "$T/$name.samples" &
  spid=$!
  timeout $((len + 15)) slowhttptest "$@" -l "$len" -r "$RATE" -p 2 -g -o "$T/$name" \
    >"$T/$name.raw" 2>&1
  echo "# $name: slowhttptest exit status $?"
  touch "$T/stop"
  wait "$ppid" "$spid"
  # its stdout is coloured: keep the text
  sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$T/$name.raw" >"$T/$name.out"
}

# verdicts NAME CONNS CUT_AFTER_S EXPECT_ALL_CLOSED: the TAP lines of one
# attack (see the top of this file).
verdicts() {
  local name=$1 conns=$2 cut=$3 all_closed=$4 n f yes no bad_rows peak late csv_rows
  read -r n f <"$T/$name.probe" 2>/dev/null || { n=0; f=1; }
  ok "$name: the probe ran ($n probes)" test "$n" -ge 20
  is "$name: every probe through relais answered 200 with the echo" "0 failed" "$f failed"
  [ "$f" != 0 ] && sed -n '2,$p' "$T/$name.probe" | sed 's/^/#   /'
  yes=$(grep -c 'service available: *YES' "$T/$name.out")
  no=$(grep -c 'service available: *NO' "$T/$name.out")
  is "$name: slowhttptest says service available: YES every time ($yes)" "0" "$no"
  ok "$name: slowhttptest printed its verdict" test "$yes" -ge 1
  # CSV: Seconds,Closed,Pending,Connected,Service Available (0 = NO)
  csv_rows=$(awk -F, 'NR > 1' "$T/$name.csv" 2>/dev/null | wc -l)
  bad_rows=$(awk -F, 'NR > 1 && $5 + 0 == 0' "$T/$name.csv" 2>/dev/null | wc -l)
  ok "$name: slowhttptest's CSV has a row per second ($csv_rows)" test "$csv_rows" -ge 3
  is "$name: no second of the CSV says the service was unavailable" "0" "$bad_rows"
  peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$T/$name.samples")
  ok "$name: the attack held many connections on relais at once (peak $peak of $conns)" \
    test "$peak" -ge $((conns * 6 / 10))
  # every attack connection exists after conns/RATE s; then the timeout
  late=$(awk -v after=$((cut * 1000)) '$1 >= after && $2 > m { m = $2 } END { print m + 0 }' \
    "$T/$name.samples")
  ok "$name: relais cut every attack connection ($late still established after ${cut} s)" \
    test "$late" -le 2
  if [ "$all_closed" = 1 ]; then
    like "$name: slowhttptest saw every connection closed" \
      'Exit status: *No open connections left' "$(grep 'Exit status' "$T/$name.out")"
  fi
  echo "# $name: samples (ms established): $(awk 'NR % 4 == 1 { printf "%s:%s ", $1, $2 }' \
    "$T/$name.samples")"
}

setup_s=$(( (CONNS + RATE - 1) / RATE ))
rsetup_s=$(( (RCONNS + RATE - 1) / RATE ))

# 1. slowloris, silent: follow-up header bytes every 4 s (> headerTimeout)
attack slowloris_silent 10 -H -c "$CONNS" -i 4 -x 10 -u "http://127.0.0.1:$RP/"
verdicts slowloris_silent "$CONNS" $((setup_s + HEAD_S + MARGIN_S)) 1

# 2. slowloris, drip: a few header bytes every second, the head never ends
attack slowloris_drip 10 -H -c "$CONNS" -i 1 -x 10 -u "http://127.0.0.1:$RP/"
verdicts slowloris_drip "$CONNS" $((setup_s + HEAD_S + MARGIN_S)) 1

# 3. slow body: Content-Length 8192, a few body bytes every second
attack slowbody 10 -B -c "$CONNS" -i 1 -x 10 -s 8192 -t POST \
  -u "http://127.0.0.1:$RP/upload"
verdicts slowbody "$CONNS" $((setup_s + READ_S + MARGIN_S)) 1

# 4. slow read: 32 MiB responses, 32 bytes read per second, 2 pipelined
#    requests per connection; relais stops writing when the kernel buffer
#    is full (a few seconds of copying), then writeTimeout runs
attack slowread 12 -X -c "$RCONNS" -w 512 -y 1024 -n 1 -z 32 -k 2 \
  -u "http://127.0.0.1:$RP/data?size=32&unit=MB"
verdicts slowread "$RCONNS" $((rsetup_s + 2 + WRITE_S + MARGIN_S)) 0

ok "relais is still running" kill -0 "$RELAIS_PID"
is "relais still answers a plain request with 200" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$RP/end")"
if [ "$TAP_FAILED" -ne 0 ]; then
  echo "# relais log (last 20 lines):"
  tail -20 "$T/relais.log" | sed 's/^/#   /'
fi
t_done
