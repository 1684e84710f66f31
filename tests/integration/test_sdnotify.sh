#!/usr/bin/env bash
# test_sdnotify.sh — systemd's readiness protocol (src/sdnotify.c), for
# real: a python3 receiver binds the unix datagram socket that
# NOTIFY_SOCKET names (SO_PASSCRED: the sender's pid comes with each
# message) and relais runs against it.
#
#  - READY=1 arrives once, and only when relais serves: at that moment the
#    port accepts and a request is routed to the backend (the provider's
#    first configuration is applied);
#  - SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1;
#  - hitless upgrade (SIGUSR2): the new process sends MAINPID=<its pid>
#    before READY=1, from its own pid; the old process sends nothing after
#    it (no STOPPING=1 that systemd would take for the service's);
#  - SIGTERM: STOPPING=1 from the main process, which exits with 0;
#  - an abstract socket ("@name") works the same;
#  - an unusable NOTIFY_SOCKET is one warning, relais serves all the same;
#  - contrib/systemd/relais.service passes `systemd-analyze verify` (with
#    ExecStart pointing at the built binary), and says Type=notify and
#    NotifyAccess=all.
. "$(dirname "$0")/lib.sh"

start_whoami w1
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: w1}
  services:
    w1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$WHOAMI_PORT"}]}}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn.yaml"
log:
  level: DEBUG
workers: 2
EOF

# The receiver: binds ADDR ("/path" or "@name"), and for each datagram
# appends one line to OUT: "pid=<sender> accept=<0|1> http=<status|-> msg=<
# the message, newlines as '|'>", where accept and http are tested the
# moment the message arrives (http only for READY=1).  Stops after 120 s or
# when OUT.stop exists.
cat >"$T/recv.py" <<'PYEOF'
import http.client, os, socket, struct, sys, time
addr, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + addr[1:] if addr[0] == "@" else addr)
s.settimeout(0.1)
open(out + ".bound", "w").close()
end = time.time() + 120
while time.time() < end and not os.path.exists(out + ".stop"):
    try:
        msg, anc, _, _ = s.recvmsg(8192, socket.CMSG_SPACE(12))
    except socket.timeout:
        continue
    pid = "?"
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = str(struct.unpack("3i", data[:12])[0])
    c = socket.socket()
    c.settimeout(1)
    accept = "1" if c.connect_ex(("127.0.0.1", port)) == 0 else "0"
    c.close()
    st = "-"
    if b"READY=1" in msg.split(b"\n"):
        try:
            h = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            h.request("GET", "/ready")
            st = str(h.getresponse().status)
            h.close()
        except Exception as e:
            st = type(e).__name__
    with open(out, "a") as f:
        f.write("pid=%s accept=%s http=%s msg=%s\n" % (pid, accept, st,
                msg.decode(errors="replace").replace("\n", "|")))
PYEOF

# start_recv ADDR NAME: starts a receiver writing $T/NAME.
start_recv() {
  : >"$T/$2"
  python3 "$T/recv.py" "$1" "$T/$2" "$RP" 2>"$T/$2.err" &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -e "$T/$2.bound" ] && break; sleep 0.05; done
}

# wait_msg FILE REGEX [N]: waits (10 s at most) until FILE has N lines
# (default 1) matching REGEX.
wait_msg() {
  local n=${3:-1}
  for _ in $(seq 1 200); do
    [ "$(grep -cE -- "$2" "$1" 2>/dev/null)" -ge "$n" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- a path socket: start, reload, upgrade, stop
start_recv "$T/notify.sock" msgs
NOTIFY_SOCKET=$T/notify.sock start_relais "$T/relais.yaml" "$RP"
P0=$RELAIS_PID
ok "READY=1 arrives" wait_msg "$T/msgs" 'msg=READY=1$'
is "READY=1 is the first message, from the main pid, once the port accepts and routes" \
  "pid=$P0 accept=1 http=200 msg=READY=1" "$(head -1 "$T/msgs")"
sleep 0.3
is "READY=1 is sent once" "1" "$(grep -c 'msg=READY=1$' "$T/msgs")"

kill -HUP "$P0"
ok "SIGHUP: RELOADING=1 then READY=1" wait_msg "$T/msgs" 'msg=READY=1$' 2
like "RELOADING=1 carries MONOTONIC_USEC, from the main pid" \
  "^pid=$P0 accept=1 http=- msg=RELOADING=1\\|MONOTONIC_USEC=[0-9]+\$" "$(sed -n 2p "$T/msgs")"
like "READY=1 follows it" "^pid=$P0 accept=1 http=200 msg=READY=1\$" "$(sed -n 3p "$T/msgs")"

kill -USR2 "$P0"
ok "upgrade: the new process says MAINPID=" wait_msg "$T/msgs" 'msg=MAINPID=[0-9]+$'
line=$(grep -E 'msg=MAINPID=' "$T/msgs" | head -1)
P1=${line##*MAINPID=}
PIDS+=($P1)
isnum() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" != "$P0" ]; }
ok "MAINPID names a new pid" isnum "$P1"
is "MAINPID comes from that process" "pid=$P1 accept=1 http=- msg=MAINPID=$P1" "$line"
ok "the new process is READY after it" wait_msg "$T/msgs" "^pid=$P1 .*msg=READY=1\$"
is "MAINPID=, then READY=1" "MAINPID READY" \
  "$(sed -n '4,$p' "$T/msgs" | sed -E 's/.*msg=([A-Z]+)=.*/\1/' | tr '\n' ' ' | sed 's/ $//')"
for _ in $(seq 1 300); do kill -0 "$P0" 2>/dev/null || break; sleep 0.05; done
ok "the old process exits" sh -c "! kill -0 $P0 2>/dev/null"
is "the old process sent nothing after the upgrade" "" \
  "$(sed -n '4,$p' "$T/msgs" | grep "^pid=$P0 ")"

kill -TERM "$P1"
ok "SIGTERM: STOPPING=1" wait_msg "$T/msgs" 'msg=STOPPING=1$'
is "STOPPING=1 from the main process" "1" "$(grep -c "^pid=$P1 .*msg=STOPPING=1\$" "$T/msgs")"
for _ in $(seq 1 300); do kill -0 "$P1" 2>/dev/null || break; sleep 0.05; done
ok "the main process exits" sh -c "! kill -0 $P1 2>/dev/null"
is "messages in all" "6" "$(wc -l <"$T/msgs" | tr -d ' ')"
touch "$T/msgs.stop"
wait "$P0" 2>/dev/null
is "the first process exited with 0" "0" "$?"
sed 's/^/# /' "$T/msgs"

# ---- an abstract socket
ABS="@relais-test-$$-$RANDOM"
start_recv "$ABS" abs
NOTIFY_SOCKET=$ABS start_relais "$T/relais.yaml" "$RP"
ok "abstract socket: READY=1 arrives" wait_msg "$T/abs" "^pid=$RELAIS_PID accept=1 http=200 msg=READY=1\$"
stop_relais_clean
ok "abstract socket: STOPPING=1 arrives" wait_msg "$T/abs" "^pid=$RELAIS_PID .*msg=STOPPING=1\$"
touch "$T/abs.stop"

# ---- an unusable socket name: a warning, and relais serves
: >"$T/relais.log"
NOTIFY_SOCKET=relative/name start_relais "$T/relais.yaml" "$RP"
ok "bad NOTIFY_SOCKET: relais still serves" wait_log 'configuration 2 applied'
is "bad NOTIFY_SOCKET: a request is answered" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RP/")"
kill -HUP "$RELAIS_PID"
wait_log 'SIGHUP' && sleep 0.2
is "bad NOTIFY_SOCKET: one warning, not one per message" "1" \
  "$(grep -c 'WRN \[sdnotify\] NOTIFY_SOCKET relative/name' "$T/relais.log")"
stop_relais_clean

# ---- the unit file
UNIT=$RELAIS_SRCDIR/contrib/systemd/relais.service
ok "the unit says Type=notify" grep -qx 'Type=notify' "$UNIT"
ok "the unit says NotifyAccess=all (the upgraded process notifies)" grep -qx 'NotifyAccess=all' "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify runs man(1) on Documentation=: the pages of the source tree
  mkdir -p "$T/unit" "$T/man/man5" "$T/man/man7" "$T/man/man8"
  for p in "$RELAIS_SRCDIR"/man/*.[578]; do cp "$p" "$T/man/man${p##*.}/"; done
  sed "s|^ExecStart=/usr/bin/relais |ExecStart=$RELAIS |" "$UNIT" >"$T/unit/relais.service"
  out=$(cd "$T/unit" && MANPATH=$T/man systemd-analyze verify ./relais.service 2>&1)
  is "systemd-analyze verify relais.service" "" "$out"
else
  echo "# systemd-analyze not found: the unit was not verified"
fi
t_done
