#!/usr/bin/env bash
# test_slowhttp.sh — slow HTTP denial-of-service attacks (slowhttptest)
# against relais in front of whoami, on an entry point with short
# respondingTimeouts.  First one connection of each kind, timed exactly
# (timing.py): silent, dripping head, dripping body, steady slow reader:
# each is closed at its timeout (headerTimeout from the accept for the
# first two, 408 for the drips; readTimeout for the body, 408;
# writeTimeout as Traefik means it, from the end of the head read to the
# end of the response write).  Then the attacks:
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

# timing.py PORT OUT: four single connections at once, each timed until
# relais closes it (10 s at most); OUT gets "NAME SECONDS FIRST-LINE":
#   silent  connects and sends nothing;
#   drip    a head that never ends, one byte every 0.5 s;
#   body    a whole head (Content-Length: 1000), then one body byte every
#           0.5 s;
#   reader  GET of 64 MiB read steadily, 16 KiB every 0.1 s (the writes
#           always progress, the response would take minutes).
cat >"$T/timing.py" <<'EOF'
import socket, sys, threading, time

port, out = int(sys.argv[1]), sys.argv[2]
res = {}


def run(name, head, drip, rcvbuf=0, read_every=0.0):
    t0 = time.time()
    first = b""
    try:
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", port))
        if head:
            s.sendall(head)
        nxt = t0 + 0.5
        while time.time() - t0 < 10:
            s.settimeout(0.05)
            try:
                b = s.recv(16384)
                if not b:
                    break
                if not first:
                    first = b
                if read_every:
                    time.sleep(read_every)
            except socket.timeout:
                pass
            if drip and time.time() >= nxt:
                s.sendall(drip)
                nxt += 0.5
        s.close()
    except OSError as e:
        if not first:
            first = str(e).encode()
    line = first.split(b"\r\n", 1)[0].decode("latin-1") or "-"
    res[name] = "%s %.2f %s" % (name, time.time() - t0, line)


cases = [
    ("silent", b"", b""),
    ("drip", b"GET /drip HTTP/1.1\r\nHost: t.test\r\nX-Drip: ", b"a"),
    ("body", b"POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 1000\r\n\r\n", b"b"),
]
th = [threading.Thread(target=run, args=c) for c in cases]
th.append(threading.Thread(target=run, args=(
    "reader", b"GET /data?size=64&unit=MB HTTP/1.1\r\nHost: t.test\r\n\r\n", b"", 16384, 0.1)))
for t in th:
    t.start()
for t in th:
    t.join()
with open(out, "w") as f:
    for k in ("silent", "drip", "body", "reader"):
        f.write(res.get(k, k + " 99 -") + "\n")
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

# sampler STOPFILE OUT MIN_S: every 0.25 s "MS COUNT" (ms since the
# start), until STOPFILE exists and MIN_S seconds have passed.
sampler() {
  local t0 i ms
  t0=$(date +%s%N)
  for ((i = 0; i < 240; i++)); do
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ -e "$1" ] && [ "$ms" -ge $(( $3 * 1000 )) ] && break
    echo "$ms $(est_count)" >>"$2"
    sleep 0.25
  done
}

# attack NAME LEN CUT SLOWHTTPTEST-ARGS...: runs slowhttptest for at most
# LEN seconds (-l) with the probe and the sampler (at least CUT + 1 s)
# alongside; results in $T/NAME.{out,csv,probe,samples}.
attack() {
  local name=$1 len=$2 cut=$3 ppid spid; shift 3
  rm -f "$T/stop"
  : >"$T/$name.samples"
  python3 "$T/probe.py" "$RP" "$T/$name.probe" "$T/stop" $((len + 10)) &
  ppid=$!
  sampler "$T/stop" "$T/$name.samples" $((cut + 1)) &
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
  # (headerTimeout cuts each one 2 s after its accept while new ones
  # arrive at RATE a second: at most RATE x 2 = 400 of 500 at once)
  ok "$name: the attack held many connections on relais at once (peak $peak of $conns)" \
    test "$peak" -ge $((conns * 4 / 10))
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

# 0. one connection of each kind, timed exactly (no load)
python3 "$T/timing.py" "$RP" "$T/timing.out"
sed 's/^/# timing: /' "$T/timing.out"
tm() { awk -v n="$1" '$1 == n { print $2 }' "$T/timing.out"; }
tl() { awk -v n="$1" '$1 == n { $1 = ""; $2 = ""; sub(/^  /, ""); print }' "$T/timing.out"; }
within() { awk -v t="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(t >= lo && t <= hi) }'; }
ok "silent connection closed at headerTimeout (${HEAD_S} s; took $(tm silent) s)" \
  within "$(tm silent)" $((HEAD_S - 1)) $((HEAD_S + 1))
ok "dripping head closed at headerTimeout (${HEAD_S} s; took $(tm drip) s)" \
  within "$(tm drip)" $((HEAD_S - 1)) $((HEAD_S + 1))
is "dripping head: answered 408" "HTTP/1.1 408 Request Timeout" "$(tl drip)"
ok "dripping body closed at readTimeout (${READ_S} s; took $(tm body) s)" \
  within "$(tm body)" $((READ_S - 1)) $((READ_S + 1))
is "dripping body: answered 408" "HTTP/1.1 408 Request Timeout" "$(tl body)"
ok "steady slow reader cut at writeTimeout (${WRITE_S} s, Traefik: head read to response written; took $(tm reader) s)" \
  within "$(tm reader)" $((WRITE_S - 1)) $((WRITE_S + 2))

# 1. slowloris, silent: follow-up header bytes every 4 s (> headerTimeout)
cut=$((setup_s + HEAD_S + MARGIN_S))
attack slowloris_silent 10 $cut -H -c "$CONNS" -i 4 -x 10 -u "http://127.0.0.1:$RP/"
verdicts slowloris_silent "$CONNS" $cut 1

# 2. slowloris, drip: a few header bytes every second, the head never ends
attack slowloris_drip 10 $cut -H -c "$CONNS" -i 1 -x 10 -u "http://127.0.0.1:$RP/"
verdicts slowloris_drip "$CONNS" $cut 1

# 3. slow body: Content-Length 8192, a few body bytes every second
cut=$((setup_s + READ_S + MARGIN_S))
attack slowbody 10 $cut -B -c "$CONNS" -i 1 -x 10 -s 8192 -t POST \
  -u "http://127.0.0.1:$RP/upload"
verdicts slowbody "$CONNS" $cut 1

# 4. slow read: 32 MiB responses, 32 bytes read per second, 2 pipelined
#    requests per connection; relais stops writing when the kernel buffer
#    is full (a few seconds of copying), then writeTimeout runs
cut=$((rsetup_s + 2 + WRITE_S + MARGIN_S))
attack slowread 12 $cut -X -c "$RCONNS" -w 512 -y 1024 -n 1 -z 32 -k 2 \
  -u "http://127.0.0.1:$RP/data?size=32&unit=MB"
verdicts slowread "$RCONNS" $cut 0

ok "relais is still running" kill -0 "$RELAIS_PID"
is "relais still answers a plain request with 200" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$RP/end")"
stop_relais_clean
if [ "$TAP_FAILED" -ne 0 ]; then
  echo "# relais log (last 20 lines):"
  tail -20 "$T/relais.log" | sed 's/^/#   /'
fi
t_done
