#!/usr/bin/env bash
# test_upgrade.sh — hitless binary upgrade (SIGUSR2 and `relais --upgrade`),
# black box:
#
#  - three upgrades in a row under bounded load (4 clients opening a new
#    connection per request and 4 keep-alive clients): every request is
#    answered 200, none fails; each upgrade gives a new pid in the pid
#    file, the old process exits, the new one says it took the sockets
#    over;
#  - a slow request (whoami ?wait=1500ms) in flight on the old process
#    when the upgrade happens completes with its whole body;
#  - the binary is run again from the path relais was started as: a new
#    file put there is what the new process runs;
#  - a new process that cannot start (broken static configuration)
#    leaves the old one serving, logged, and `relais --upgrade` fails;
#  - kill -USR2 works as `relais --upgrade` does.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
RP=$(free_port)
cp "$RELAIS" "$T/relais-bin"
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    all: {rule: "PathPrefix(\`/\`)", service: w1}
  services:
    w1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
EOF
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  file:
    filename: "$T/dyn.yaml"
log:
  level: INFO
workers: 2
EOF
PIDFILE=$T/relais.pid
RELAIS=$T/relais-bin start_relais "$T/relais.yaml" "$RP" --pid-file "$PIDFILE"
# the pid file is written once relais serves
for _ in $(seq 1 100); do [ -s "$PIDFILE" ] && break; sleep 0.05; done
is "the pid file names the process" "$RELAIS_PID" "$(cat "$PIDFILE" 2>/dev/null)"

# load SECONDS: 4 clients with a new connection per request and 4
# keep-alive clients; prints "status count" lines (errors by exception
# name) and "total N".
cat >"$T/load.py" <<'PYEOF'
import http.client, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
stop = time.time() + secs
res, lock = {}, threading.Lock()
def note(k):
    with lock:
        res[k] = res.get(k, 0) + 1
def fresh():
    n = 0
    while time.time() < stop and n < 20000:
        n += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/f")
            r = c.getresponse()
            r.read()
            c.close()
            note(str(r.status))
        except Exception as e:
            note(type(e).__name__)
def keep():
    c, n = None, 0
    while time.time() < stop and n < 20000:
        n += 1
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/k")
            r = c.getresponse()
            r.read()
            note(str(r.status))
            if (r.getheader("Connection") or "").lower() == "close":
                c.close()
                c = None
        except Exception as e:
            note(type(e).__name__)
            c = None
ts = [threading.Thread(target=fresh) for _ in range(4)] + \
     [threading.Thread(target=keep) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
for k, v in sorted(res.items()): print(k, v)
print("total", sum(res.values()))
PYEOF

newpid() { cat "$PIDFILE" 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_gone() { for _ in $(seq 1 200); do gone "$1" && return 0; sleep 0.05; done; return 1; }

# ---- three upgrades under load, a slow request across the first
python3 "$T/load.py" "$RP" 4 >"$T/load.out" &
LOAD=$!
curl -s --max-time 10 -o "$T/slow.out" -w '%{http_code}' \
  "http://127.0.0.1:$RP/data?size=300000&wait=1500ms" >"$T/slow.code" &
SLOW=$!
sleep 0.7
for round in 1 2 3; do
  old=$(newpid)
  out=$("$RELAIS" --upgrade --pid-file "$PIDFILE" 2>&1)
  rc=$?
  new=$(newpid)
  PIDS+=("$new")
  is "upgrade $round: relais --upgrade succeeds" "0" "$rc"
  is "upgrade $round: it names both pids" "relais: upgraded: pid $old -> $new" "$out"
  ok "upgrade $round: a new process" test "$new" != "$old"
  ok "upgrade $round: the old process exits" wait_gone "$old"
  sleep 0.4
done
wait "$SLOW"
is "the slow request in flight during the upgrade is answered" "200" "$(cat "$T/slow.code")"
is "... with its whole body" "300000" "$(wc -c <"$T/slow.out")"
wait "$LOAD"
total=$(sed -n 's/^total //p' "$T/load.out")
is "every request under load answered 200 ($total requests)" "200 $total" "$(grep '^200 ' "$T/load.out")"
ok "... and there were many ($total > 500)" test "${total:-0}" -gt 500
is "the sockets were taken over (3 times 2 workers)" "3" \
  "$(grep -c 'web: 2 listening socket(s) taken over from the old process' "$T/relais.log")"
ok "the old processes drained" test "$(grep -c 'upgraded to pid' "$T/relais.log")" -eq 3

# ---- the binary at the path relais was started as is the one run
cur=$(newpid)
cp "$RELAIS" "$T/relais-bin.new" && mv "$T/relais-bin.new" "$T/relais-bin"
ok "the running binary was replaced on disk" bash -c "readlink /proc/$cur/exe | grep -q deleted"
kill -USR2 "$cur"
for _ in $(seq 1 100); do [ "$(newpid)" != "$cur" ] && break; sleep 0.05; done
new=$(newpid)
PIDS+=("$new")
ok "kill -USR2 upgrades too" test "$new" != "$cur"
is "the new process runs the new file" "$T/relais-bin" "$(readlink "/proc/$new/exe")"
ok "the old one exits" wait_gone "$cur"
is "still serving" "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RP/")"

# ---- a new process that cannot start: the old keeps serving
cp "$T/relais.yaml" "$T/relais.yaml.good"
printf 'entryPoints: [broken\n' >"$T/relais.yaml"
cur=$(newpid)
out=$("$RELAIS" --upgrade --pid-file "$PIDFILE" 2>&1)
rc=$?
is "a failed upgrade: relais --upgrade exits 1" "1" "$rc"
like "... and says so" "no new process took over from pid $cur" "$out"
ok "the failure is logged by the old process" \
  wait_log "upgrade failed: the new process exited \\(status 1\\) before it was ready; this one keeps serving" 5
ok "the old process still runs" kill -0 "$cur"
is "the pid file is unchanged" "$cur" "$(newpid)"
is "and it still serves" "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RP/")"
cp "$T/relais.yaml.good" "$T/relais.yaml"

# ---- stop: the pid file goes with the process
kill "$cur"
ok "SIGTERM stops it" wait_gone "$cur"
ok "the pid file is removed" test ! -e "$PIDFILE"

t_done
