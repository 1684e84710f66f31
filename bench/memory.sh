#!/bin/bash
# bench/memory.sh — relais' memory: what an idle client connection costs,
# and whether the resident size grows under a long constant load (issue 7:
# "10,000 idle keep-alive client connections cost at most 1 KiB each of
# relais RSS; no growth over a 10-minute soak at constant load").
# Not a test: never run by make check.
#
# (a) idle connections, for each case "WORKERS:MODE" of CASES (default
#     "1:req 1:conn 2:req 2:conn"), on a fresh relais (--workers WORKERS,
#     one router to a contrib/whoami/whoami, idleTimeout and headerTimeout
#     1 h: a connection that never sent a request is cut after
#     headerTimeout, a kept idle one after idleTimeout):
#       before  after a warm-up of 100 requests (50 connections, closed);
#       open    N (default 10,000) client connections held open: MODE req =
#               each carried ONE complete keep-alive request (GET /bench,
#               full response read) and is now idle; MODE conn = connected,
#               never sent a byte;
#       closed  after the client closed them all (relais' fd count back);
#       trimmed after malloc_trim(0) called inside relais with gdb (only
#               when gdb is installed and TRIM=1): what glibc kept;
#       reopen  the same N connections opened again (the freed memory is
#               reused: no new growth expected).
#     Each point is VmRSS (/proc/PID/status) and Pss, Private_Dirty
#     (/proc/PID/smaps_rollup) of the relais process (all threads), in KiB;
#     the cost per connection is (open - before) / N bytes.
# (b) soak, SOAK_SECONDS (default 600): wrk -t1 -c32 with a Lua script
#     (95 % GET /api/bench through a chain headers + stripPrefix to whoami,
#     5 % GET /down to a router whose only server has nothing listening:
#     502), a configuration reload every SAMPLE_SECONDS (default 10: the
#     dynamic file is replaced, alternating two versions that differ in
#     header values, one router and one middleware), relais' memory sampled
#     at the same period.  Prints the samples and the growth from minute 1
#     (t = 60 s) to the end, in bytes and %.  relais (--workers
#     SOAK_WORKERS, default 1), whoami and wrk are pinned with taskset to
#     SOAK_CPUS (default: the last CPU only, so that the soak takes one CPU
#     of a shared machine; e.g. SOAK_CPUS=0-1 to use all).
#
# Usage: bench/memory.sh [idle|soak|all]     (default all)
#   environment: BUILDDIR, RELAIS, RELAIS_PLUGIN_DIR as in bench/run.sh;
#   WHOAMI (default $BUILDDIR/contrib/whoami/whoami); N=10000 CONC=50
#   CASES="1:req 1:conn 2:req 2:conn" TRIM=1 SOAK_SECONDS=600
#   SAMPLE_SECONDS=10 SOAK_WORKERS=1 SOAK_CPUS=<last CPU> SOAK_CONNS=32;
#   MALLOC_ARENA_MAX etc. reach relais unchanged.
# Needs: python3, wrk (soak), taskset (optional), gdb (optional, TRIM);
#   only 127.0.0.1 is used; the open-file limit is raised to
#   min(65536, hard limit) for relais and the client (N + ~100 needed).
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
WHOAMI=${WHOAMI:-$BUILDDIR/contrib/whoami/whoami}
WHAT=${1:-all}
N=${N:-10000}
CONC=${CONC:-50}
CASES=${CASES:-1:req 1:conn 2:req 2:conn}
TRIM=${TRIM:-1}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
SOAK_WORKERS=${SOAK_WORKERS:-1}
SOAK_CPUS=${SOAK_CPUS:-$(( $(nproc) - 1 ))}
SOAK_CONNS=${SOAK_CONNS:-32}
PYTHON=${PYTHON:-python3}
case $WHAT in idle|soak|all) ;; *) echo "usage: bench/memory.sh [idle|soak|all]" >&2; exit 2 ;; esac
command -v "$PYTHON" >/dev/null || { echo "memory.sh: $PYTHON not found" >&2; exit 2; }
if [ "$WHAT" != idle ]; then
  command -v wrk >/dev/null || { echo "memory.sh: wrk not found" >&2; exit 2; }
fi
[ -x "$RELAIS" ] || { echo "memory.sh: no relais binary at $RELAIS (set BUILDDIR or RELAIS)" >&2; exit 2; }
[ -x "$WHOAMI" ] || { echo "memory.sh: no whoami binary at $WHOAMI (set WHOAMI)" >&2; exit 2; }

# Open files: N client sockets in the client, N + the upstream pool in relais.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
if [ "$WHAT" != soak ] && [ "$hard" -lt $((N + 200)) ]; then
  echo "memory.sh: open-file hard limit $hard is below N + 200 = $((N + 200))" >&2; exit 2
fi

# $W, PIDS and the exit trap that stops them all and removes $W.
. "$HERE/common.sh"
bench_workdir relais-memory
trap 'trap - ERR; bench_cleanup' EXIT    # no ERR report from the cleanup
# stop_pid PID: waits up to 5 s for PID (already sent SIGTERM), then kills it.
stop_pid() {
  [ -n "$1" ] || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
trap 'echo "memory.sh: command failed at line $LINENO" >&2' ERR

# free_port: the tests' helper (tests/servers/common.sh): a loopback port
# nobody uses, below the ephemeral range, reserved against concurrent runs.
. "$HERE/../tests/servers/common.sh"
free_port() { rt_free_port; }

# mem PID: prints "VmRSS Pss Private_Dirty" of PID in KiB.
mem() {
  local rss pss pd
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$1/status")
  pss=$(awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup")
  pd=$(awk '/^Private_Dirty:/{print $2}' "/proc/$1/smaps_rollup")
  echo "$rss $pss $pd"
}
# nfds PID: how many file descriptors PID has open.
nfds() { ls "/proc/$1/fd" | wc -l; }
# wait_fds PID OP COUNT SECONDS: waits until nfds PID OP COUNT (OP: ge|le).
wait_fds() {
  local i n
  for ((i = 0; i < $4 * 10; i++)); do
    n=$(nfds "$1")
    if [ "$2" = ge ] && [ "$n" -ge "$3" ]; then return 0; fi
    if [ "$2" = le ] && [ "$n" -le "$3" ]; then return 0; fi
    sleep 0.1
  done
  echo "memory.sh: relais has $n fds, expected $2 $3 after $4 s" >&2
  return 1
}
# wait_200 PORT PATH: waits (10 s max) until GET PATH answers 200.
wait_200() {
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2")" = 200 ] && return 0
    sleep 0.05
  done
  echo "memory.sh: 127.0.0.1:$1$2 does not answer 200" >&2
  return 1
}
# trim PID: calls malloc_trim(0) inside PID with gdb; false without gdb.
trim() {
  [ "$TRIM" = 1 ] && command -v gdb >/dev/null || return 1
  timeout 60 gdb -p "$1" -batch -nx -ex 'call (int) malloc_trim(0)' >"$W/gdb.out" 2>&1
}

# The client: holds N connections to 127.0.0.1:PORT (asyncio, CONC at a time
# while opening).  Commands on stdin: "open MODE" (req: one keep-alive GET
# /bench each, whole response read, status 200 checked; conn: connect only)
# answers "open OK FAIL SECONDS"; "close" closes them all and answers
# "closed"; "warm COUNT" sends COUNT requests over CONC connections, closes
# them and answers "warm OK FAIL"; end of input exits.
cat >"$W/client.py" <<'EOF'
import asyncio, sys, time

PORT, N, CONC = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
REQ = b"GET /bench HTTP/1.1\r\nHost: mem.test\r\nUser-Agent: memory.sh\r\n\r\n"

async def exchange(r, w):
    """One keep-alive request on (r, w); True when a whole 200 came back."""
    w.write(REQ)
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split(" ")[1] != "200":
        return False
    cl = [l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("content-length:")]
    if len(cl) != 1:
        return False
    await r.readexactly(int(cl[0]))
    return True

async def one(sem, mode, held):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PORT), 30)
            held.append(w)
            if mode == "req" and not await asyncio.wait_for(exchange(r, w), 30):
                return False
            return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
            return False

async def close_all(held):
    for w in held:
        w.close()
    for w in held:
        try:
            await w.wait_closed()
        except OSError:
            pass
    held.clear()

async def main():
    loop = asyncio.get_running_loop()
    held = []
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = line.split()
        if cmd[0] == "open":
            sem = asyncio.Semaphore(CONC)
            t0 = time.monotonic()
            res = await asyncio.gather(*(one(sem, cmd[1], held) for _ in range(N)))
            ok = sum(res)
            print("open %d %d %.1f" % (ok, N - ok, time.monotonic() - t0), flush=True)
        elif cmd[0] == "close":
            await close_all(held)
            print("closed", flush=True)
        elif cmd[0] == "warm":
            # CONC connections at once, so that relais' upstream pool is
            # as large as during "open req"
            count = int(cmd[1])
            conns = [await asyncio.open_connection("127.0.0.1", PORT) for _ in range(CONC)]

            async def serial(k):
                r, w = conns[k]
                good = 0
                for _ in range(k, count, CONC):
                    try:
                        good += await asyncio.wait_for(exchange(r, w), 30)
                    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                        pass
                return good
            ok = sum(await asyncio.gather(*(serial(k) for k in range(CONC))))
            await close_all([w for _, w in conns])
            print("warm %d %d" % (ok, count - ok), flush=True)

asyncio.run(main())
EOF

# start_relais NAME PORT WORKERS: relais with static file $W/NAME.yaml
# (entry point on PORT, file provider on $W/NAME.dyn.yaml, written by the
# caller first; global.maxConnections above N: its default is half the
# open-file limit); log $W/NAME.log; sets RPID.
start_relais() {
  cat >"$W/$1.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$2"
    transport:
      respondingTimeouts:
        idleTimeout: 1h
        headerTimeout: 1h
global:
  maxConnections: $((N + 1000))
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$W/$1.dyn.yaml"
log:
  level: INFO
EOF
  : >"$W/$1.log"
  "${PIN[@]}" "$RELAIS" --config "$W/$1.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --workers "$3" \
    >>"$W/$1.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
}
# stop_relais: stops $RPID; fails loudly if it had died on its own.
stop_relais() {
  if ! kill "$RPID" 2>/dev/null; then
    local st=0
    wait "$RPID" || st=$?
    echo "memory.sh: relais $RPID had exited (status $st)" >&2
    tail -5 "$W"/*.log >&2; exit 1
  fi
  stop_pid "$RPID"
}
# client CMD: sends CMD to the client coprocess, prints its one-line answer
# (120 s max).
client() {
  local ans
  echo "$1" >&"${CL[1]}"
  read -r -t 120 ans <&"${CL[0]}" || { echo "memory.sh: no answer from the client to '$1'" >&2; return 1; }
  echo "$ans"
}
# per_conn AFTER BEFORE: (AFTER - BEFORE) KiB / N, in bytes per connection.
per_conn() { awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN{ printf "%.0f", (a - b) * 1024 / n }'; }

PIN=()
echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | sed -n 1p))"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -sr)  cores: $(nproc)  nofile: $(ulimit -n)"
echo "# glibc: $(ldd --version 2>&1 | sed -n 1p)  MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-unset}"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"

WPORT=$(free_port)
"$WHOAMI" --addr 127.0.0.1 --port "$WPORT" >"$W/whoami.out" 2>&1 &
WHOAMI_PID=$!; PIDS+=("$WHOAMI_PID")
rt_wait_port "$WPORT" 10

# ----------------------------------------------------------------- (a)
if [ "$WHAT" != soak ]; then
  echo
  echo "## (a) idle client connections: N=$N, relais VmRSS / Pss / Private_Dirty in KiB"
  echo "## per-connection cost = (open - before) / N bytes; closed, trimmed: what stays after closing"
  printf "%-7s %-4s %-22s %-22s %-20s %-22s %-22s %-22s %s\n" workers mode before open \
    "B/conn rss/pss/pd" closed trimmed reopen "open: ok fail secs"
  for c in $CASES; do
    wk=${c%%:*}; mode=${c#*:}
    port=$(free_port)
    cat >"$W/idle.dyn.yaml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: whoami
  services:
    whoami:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$WPORT"
EOF
    start_relais idle "$port" "$wk"
    rt_wait_port "$port" 10
    wait_200 "$port" /bench
    coproc CL { exec "$PYTHON" "$W/client.py" "$port" "$N" "$CONC"; }
    PIDS+=("$CL_PID")
    warm=$(client "warm 100")
    sleep 1
    base_fds=$(nfds "$RPID")
    before=$(mem "$RPID")
    opened=$(client "open $mode")
    case $opened in "open $N 0 "*) ;; *) echo "memory.sh: $wk:$mode: client: $opened" >&2 ;; esac
    wait_fds "$RPID" ge $((base_fds + N - 10)) 30
    sleep 2
    open=$(mem "$RPID")
    client close >/dev/null
    wait_fds "$RPID" le $((base_fds + CONC)) 30
    sleep 2
    closed=$(mem "$RPID")
    if trim "$RPID"; then sleep 1; trimmed=$(mem "$RPID"); else trimmed="- - -"; fi
    reopened=$(client "open $mode")
    wait_fds "$RPID" ge $((base_fds + N - 10)) 30
    sleep 2
    reopen=$(mem "$RPID")
    client close >/dev/null
    clfd=${CL[1]}; exec {clfd}>&-
    wait "$CL_PID" 2>/dev/null || true
    read -r b_rss b_pss b_pd <<<"$before"
    read -r o_rss o_pss o_pd <<<"$open"
    printf "%-7s %-4s %-22s %-22s %-20s %-22s %-22s %-22s %s | %s | %s\n" "$wk" "$mode" \
      "${before// //}" "${open// //}" \
      "$(per_conn "$o_rss" "$b_rss")/$(per_conn "$o_pss" "$b_pss")/$(per_conn "$o_pd" "$b_pd")" \
      "${closed// //}" "${trimmed// //}" "${reopen// //}" "${opened#open }" "reopen ${reopened#open }" "$warm"
    stop_relais
  done
fi

# ----------------------------------------------------------------- (b)
if [ "$WHAT" != idle ]; then
  # gen_soak VERSION: the dynamic file, version a or b.
  gen_soak() {
    cat <<EOF
http:
  routers:
    api:
      rule: "PathPrefix(\`/api\`)"
      service: whoami
      middlewares: [hdr, strip]
    down:
      rule: "PathPrefix(\`/down\`)"
      service: dead
EOF
    if [ "$1" = b ]; then cat <<EOF
    extra:
      rule: "Host(\`extra.test\`) && PathPrefix(\`/x\`)"
      service: whoami
      middlewares: [addp, hdr]
EOF
    fi
    cat <<EOF
  middlewares:
    hdr:
      headers:
        customRequestHeaders:
          X-Soak-Version: "$1"
          X-Forwarded-Proto: ""
        customResponseHeaders:
          X-Soak: "version $1"
    strip:
      stripPrefix:
        prefixes: [/api]
EOF
    if [ "$1" = b ]; then cat <<EOF
    addp:
      addPrefix:
        prefix: /extra
EOF
    fi
    cat <<EOF
  services:
    whoami:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$WPORT"
    dead:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$DEAD"
EOF
  }
  DEAD=$(free_port)     # nothing listens there: /down answers 502
  port=$(free_port)
  gen_soak a >"$W/soak.dyn.yaml"
  PIN=()
  command -v taskset >/dev/null && PIN=(taskset -c "$SOAK_CPUS")
  # whoami pinned too (it was started unpinned for (a))
  [ ${#PIN[@]} -eq 0 ] || taskset -apc "$SOAK_CPUS" "$WHOAMI_PID" >/dev/null
  start_relais soak "$port" "$SOAK_WORKERS"
  rt_wait_port "$port" 10
  wait_200 "$port" /api/bench
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/down")
  [ "$code" = 502 ] || { echo "memory.sh: /down answered $code, not 502" >&2; exit 1; }
  cat >"$W/soak.lua" <<'EOF'
-- 1 request in 20 to /down (502), the others through headers + stripPrefix
local i = 0
request = function()
  i = i + 1
  if i % 20 == 0 then return wrk.format("GET", "/down") end
  return wrk.format("GET", "/api/bench")
end
EOF
  echo
  echo "## (b) soak: ${SOAK_SECONDS} s, wrk -t1 -c$SOAK_CONNS (95 % /api/bench via headers+stripPrefix, 5 % /down -> 502),"
  echo "##     reload every ${SAMPLE_SECONDS} s (two versions alternating), relais --workers $SOAK_WORKERS, CPUs ${SOAK_CPUS}"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf "%-7s %10s %10s %10s %9s %s\n" t_s rss_kB pss_kB privd_kB applied loadavg
  printf "%-7s %10s %10s %10s %9s %s\n" 0 $(mem "$RPID") \
    "$(grep -c 'configuration [0-9]* applied' "$W/soak.log" || true)" "$(cut -d' ' -f1 /proc/loadavg)"
  "${PIN[@]}" wrk -t1 -c"$SOAK_CONNS" -d"${SOAK_SECONDS}s" -s "$W/soak.lua" \
    "http://127.0.0.1:$port" >"$W/wrk.out" 2>&1 &
  WRK=$!; PIDS+=("$WRK")
  t0=$(date +%s); ver=a; RSS_MIN1=""; T_MIN1=""; RSS_LAST=""; last=0
  for ((t = SAMPLE_SECONDS; t <= SOAK_SECONDS; t += SAMPLE_SECONDS)); do
    now=$(date +%s); [ $((t0 + t)) -gt "$now" ] && sleep $((t0 + t - now))
    kill -0 "$RPID" 2>/dev/null || { echo "memory.sh: relais died during the soak" >&2; tail -5 "$W/soak.log" >&2; exit 1; }
    m=$(mem "$RPID"); last=$t; RSS_LAST=${m%% *}
    [ -z "$RSS_MIN1" ] && [ "$t" -ge 60 ] && { RSS_MIN1=$RSS_LAST; T_MIN1=$t; }
    printf "%-7s %10s %10s %10s %9s %s\n" "$t" $m \
      "$(grep -c 'configuration [0-9]* applied' "$W/soak.log" || true)" "$(cut -d' ' -f1 /proc/loadavg)"
    # reload: replace the dynamic file with the other version
    if [ "$t" -lt "$SOAK_SECONDS" ]; then
      if [ $ver = a ]; then ver=b; else ver=a; fi
      gen_soak $ver >"$W/soak.tmp.yaml"; mv -f "$W/soak.tmp.yaml" "$W/soak.dyn.yaml"
    fi
  done
  wait "$WRK" || true
  echo
  echo "# wrk:"; sed 's/^/#   /' "$W/wrk.out"
  echo "# configurations applied: $(grep -c 'configuration [0-9]* applied' "$W/soak.log" || true)," \
       "log lines at WARN/ERROR: $(grep -Ec ' (WRN|ERR) ' "$W/soak.log" || true)"
  if [ -n "$RSS_MIN1" ] && [ "$last" -gt "$T_MIN1" ]; then
    awk -v a="$RSS_MIN1" -v b="$RSS_LAST" -v f="$T_MIN1" -v l="$last" 'BEGIN{
      printf "growth VmRSS t=%d s -> t=%d s: %+d KiB (%+.0f bytes, %+.2f %%)\n", f, l, b - a, (b - a) * 1024, (b - a) * 100 / a }'
  fi
  grep -E ' (WRN|ERR) ' "$W/soak.log" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /' || true
  stop_relais
fi
