#!/bin/bash
# bench/routers.sh — relais with a large routing table: 10,000 Host routers
# (router rN: Host(`hN.example.com`), N = 0..9999, all to one service).
# Not a test: never run by make check.
#
# Measures
#   (a) the time to apply the table:
#       - at start: relais started on the 10k file, "built in X ms" of its
#         first non-empty configuration (RUNS starts, median);
#       - live reload 1 -> 10,000 routers: the file is replaced (mv) under a
#         running relais; "built in X ms" of the next applied line, and the
#         wall time from the mv to that line (log timestamps, ms), which
#         also counts reading + parsing the YAML and the file provider's
#         50 ms debounce (RUNS reloads, medians);
#       - live reload 10,000 -> 10,001 routers (one router added);
#   (b) latency with 10,000 routers against 1 router: two relais (one
#       worker each, pinned to CPU 0) with the 1-router and the 10k-router
#       file, loaded in turn (interleaved, RUNS rounds) by
#       wrk -t1 -cCONNS -dSECONDSs --latency -H 'Host: h5000.example.com'
#       (pinned to the last CPU, with the nginx backend); medians of p50,
#       p99 and req/s.
#
# Usage: bench/routers.sh     (environment: BUILDDIR, RELAIS,
#        RELAIS_PLUGIN_DIR as in bench/run.sh; N=10000 routers, RUNS=3,
#        SECONDS_PER_RUN=5, CONNS=64, HOST=h5000.example.com)
# Needs: nginx, wrk, python3 (nothing else); only 127.0.0.1 is used.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
N=${N:-10000}
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-64}
HOST=${HOST:-h$((N / 2)).example.com}
for t in nginx wrk; do
  command -v "$t" >/dev/null || { echo "routers.sh: $t not found" >&2; exit 2; }
done
[ -x "$RELAIS" ] || { echo "routers.sh: no relais binary at $RELAIS (set BUILDDIR or RELAIS)" >&2; exit 2; }

W=$(mktemp -d /tmp/relais-routers.XXXXXX); chmod 755 "$W"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do stop_pid "$p"; done
  rm -rf "$W"
}
# stop_pid PID: waits up to 2 s for PID (already sent SIGTERM), then kills it.
stop_pid() {
  [ -n "$1" ] || return 0
  for _ in $(seq 1 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo "routers.sh: command failed at line $LINENO" >&2' ERR

PX=(); LD=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  PX=(taskset -c 0); LD=(taskset -c "$(( $(nproc) - 1 ))")
fi

# free_port: a loopback port no socket uses, below the ephemeral range and
# reserved against concurrent runs (the tests' helper, tests/servers/common.sh).
. "$HERE/../tests/servers/common.sh"
. "$HERE/common.sh" # median
free_port() { rt_free_port; }

# wait_200 PORT HOST: waits until GET / with Host HOST answers 200.
wait_200() {
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "http://127.0.0.1:$1/small")" = 200 ] && return 0
    sleep 0.05
  done
  echo "routers.sh: 127.0.0.1:$1 (Host $2) does not answer 200" >&2
  return 1
}

# Backend: nginx, one worker, like peers.sh's.
BPORT=$(free_port)
bench_backend "$W" "$BPORT"
"${LD[@]}" nginx -c "$W/backend.conf" -p "$W" & PIDS+=($!)

# gen_routers COUNT FILE: COUNT routers rN Host(`hN.example.com`) -> backend;
# with COUNT=1 the one router is the one for $HOST.
gen_routers() {
  awk -v n="$1" -v port="$BPORT" -v host="$HOST" 'BEGIN {
    print "http:"; print "  routers:"
    if (n == 1) { printf "    r1:\n      rule: \"Host(`%s`)\"\n      service: backend\n", host }
    else for (i = 0; i < n; i++)
      printf "    r%d:\n      rule: \"Host(`h%d.example.com`)\"\n      service: backend\n", i, i
    print "  services:"; print "    backend:"; print "      loadBalancer:"
    print "        servers:"; printf "          - url: \"http://127.0.0.1:%s\"\n", port
  }' >"$2"
}
gen_routers 1 "$W/one.yaml"
gen_routers "$N" "$W/many.yaml"
gen_routers "$((N + 1))" "$W/many1.yaml"

# start_relais NAME PORT DYNFILE: relais with one worker on PORT, dynamic
# file $W/NAME/dynamic.yaml (a copy of DYNFILE); log $W/NAME.log.
start_relais() {
  mkdir -p "$W/$1"
  cp "$3" "$W/$1/dynamic.yaml"
  cat >"$W/$1.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$2"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$W/$1/dynamic.yaml"
log:
  level: INFO
EOF
  : >"$W/$1.log"
  "${PX[@]}" "$RELAIS" --config "$W/$1.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --workers 1 \
    >>"$W/$1.log" 2>&1 &
  PIDS+=($!)
  RPID=$!
}

# applied_line LOG K: waits (30 s max) for the K-th "applied" line of LOG
# that has ROUTERS routers; prints it.
applied_line() {
  local l
  for _ in $(seq 1 3000); do
    l=$(grep -E "configuration [0-9]+ applied: $3 routers" "$1" | sed -n "${2}p" || true)
    [ -n "$l" ] && { echo "$l"; return 0; }
    sleep 0.01
  done
  echo "routers.sh: no applied line #$2 with $3 routers in $1" >&2
  tail -5 "$1" >&2
  return 1
}
# stop_relais: stops the relais $RPID; fails loudly if it had died.
stop_relais() {
  if ! kill "$RPID" 2>/dev/null; then
    local st=0
    wait "$RPID" || st=$?
    echo "routers.sh: relais $RPID had exited (status $st)" >&2
    tail -5 "$W"/*.log >&2; exit 1
  fi
  stop_pid "$RPID"
}
built_ms() { sed -E 's/.*built in ([0-9.]+) ms.*/\1/' <<<"$1"; }
log_ms() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%3N; }

echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | head -1))"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -sr)  cores: $(nproc)  routers: $N"
echo "# dynamic file: $(wc -c <"$W/many.yaml") bytes"

# (a) apply at start
START_BUILT=""
for r in $(seq 1 "$RUNS"); do
  port=$(free_port)
  start_relais "start$r" "$port" "$W/many.yaml"
  l=$(applied_line "$W/start$r.log" 1 "$N")
  START_BUILT+="$(built_ms "$l") "
  stop_relais
done

# (a) live reloads 1 -> N and N -> N+1
RELOAD_BUILT=""; RELOAD_WALL=""; ADD_BUILT=""; ADD_WALL=""
port=$(free_port)
start_relais reload "$port" "$W/one.yaml"
applied_line "$W/reload.log" 1 1 >/dev/null
for r in $(seq 1 "$RUNS"); do
  # back to 1 router first (not measured), then 1 -> N
  if [ "$r" -gt 1 ]; then
    cp "$W/one.yaml" "$W/reload/tmp.yaml"; mv -f "$W/reload/tmp.yaml" "$W/reload/dynamic.yaml"
    applied_line "$W/reload.log" "$r" 1 >/dev/null
  fi
  sleep 0.3
  cp "$W/many.yaml" "$W/reload/tmp.yaml"
  t0=$(date +%s%3N); mv -f "$W/reload/tmp.yaml" "$W/reload/dynamic.yaml"
  l=$(applied_line "$W/reload.log" "$r" "$N")
  RELOAD_BUILT+="$(built_ms "$l") "; RELOAD_WALL+="$(( $(log_ms "$l") - t0 )) "
  sleep 0.3
  cp "$W/many1.yaml" "$W/reload/tmp.yaml"
  t0=$(date +%s%3N); mv -f "$W/reload/tmp.yaml" "$W/reload/dynamic.yaml"
  l=$(applied_line "$W/reload.log" "$r" "$((N + 1))")
  ADD_BUILT+="$(built_ms "$l") "; ADD_WALL+="$(( $(log_ms "$l") - t0 )) "
done
stop_relais

echo
echo "## (a) applying $N routers (ms; median of $RUNS; runs in brackets)"
printf "%-36s %10s  %s\n" case median runs
printf "%-36s %10s  [%s]\n" "start: built in" "$(median <<<"$START_BUILT")" "$START_BUILT"
printf "%-36s %10s  [%s]\n" "reload 1->$N: built in" "$(median <<<"$RELOAD_BUILT")" "$RELOAD_BUILT"
printf "%-36s %10s  [%s]\n" "reload 1->$N: mv to applied (wall)" "$(median <<<"$RELOAD_WALL")" "$RELOAD_WALL"
printf "%-36s %10s  [%s]\n" "reload $N->$((N + 1)): built in" "$(median <<<"$ADD_BUILT")" "$ADD_BUILT"
printf "%-36s %10s  [%s]\n" "reload $N->$((N + 1)): mv to applied" "$(median <<<"$ADD_WALL")" "$ADD_WALL"
echo "# wall times include the file provider's 50 ms debounce and the YAML parse"

# (b) latency, 1 router vs N routers
P1=$(free_port); start_relais lat1 "$P1" "$W/one.yaml"
PN=$(free_port); start_relais latn "$PN" "$W/many.yaml"
wait_200 "$P1" "$HOST"; wait_200 "$PN" "$HOST"
to_ms() {
  awk -v v="$1" 'BEGIN{
    if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 }
    else printf "nan" }'
}
declare -A RPS P50 P99 ERRS
for r in $(seq 1 "$RUNS"); do
  for t in "1:$P1" "$N:$PN"; do
    name=${t%%:*}; port=${t#*:}
    out=$("${LD[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Host: $HOST" \
          "http://127.0.0.1:$port/small" 2>&1)
    RPS[$name]+="$(awk '/^Requests\/sec:/{print $2}' <<<"$out") "
    P50[$name]+="$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")") "
    P99[$name]+="$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")") "
    ERRS[$name]+="$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')"
  done
done
echo
echo "## (b) wrk -t1 -c$CONNS -d${SECS}s --latency -H 'Host: $HOST' /small, relais --workers 1 (median of $RUNS)"
printf "%-10s %10s %10s %10s  %s\n" routers req/s p50_ms p99_ms "p50 runs / errors"
for name in 1 "$N"; do
  printf "%-10s %10.0f %10s %10s  [%s] %s\n" "$name" "$(median <<<"${RPS[$name]}")" \
    "$(median <<<"${P50[$name]}")" "$(median <<<"${P99[$name]}")" "${P50[$name]}" "${ERRS[$name]:-}"
done
awk -v a="$(median <<<"${P50[1]}")" -v b="$(median <<<"${P50[$N]}")" \
  'BEGIN{ printf "p50 ratio %s/1 router: %.3f\n", "'"$N"'", b / a }'
