#!/usr/bin/env bash
# bench/lb.sh — the load-balancing strategies: the cost of one pick, and
# the latency with one slow server out of four.  Not a test: never run by
# make check.
#
# 1. Pick cost: builds bench/lbpick.c (gcc -O2 against sdk/, -ldl) and runs
#    it on the staged strategy plugins (wrr p2c leastconn leasttime hrw
#    chash) for 4, 16 and 256 servers: ns per pick, one thread pinned to
#    CPU 0; then (unless --lbpick-threads 1) the same with two threads on
#    one instance, pinned to CPU 0 and the last CPU (contention on the
#    shared in-flight counters and the plugins' shared state).
# 2. p99 with a slow server: four whoami backends (contrib/whoami), one of
#    them ("slow", the first server of the list) answering after --delay
#    ms, the three others at once; one relais (--workers 1) with one
#    router and service per strategy (Host: STRATEGY.lb.test), each service
#    the same four servers with loadBalancer.strategy STRATEGY.  wrk -t1
#    -cCONNS -dSECONDSs --latency loads one service at a time, rounds
#    interleaved (wrr p2c leastconn leasttime, wrr p2c ...).  Per strategy:
#    median req/s, its spread over the rounds ((max - min) / median), median
#    p50 and p99, and the median share of the requests that the slow server
#    got (lines its --log file gained during the run over the lines all
#    four gained; an even split is 25%), and wrk's errors summed.
#
# Usage:
#   bench/lb.sh [--rounds N] [--seconds S] [--conns C] [--delay MS]
#               [--strategies "wrr p2c leastconn leasttime"] [--picks M]
#               [--lbpick-threads 1|2] [--no-lbpick] [--no-p99] [--no-pin]
#   (defaults: 3 rounds of 5 s, 64 connections, 20 ms, those strategies,
#   2,000,000 picks per lbpick cell, 2 threads)
#
# By default relais (and lbpick's single thread) run on CPU 0, wrk and the
# backends on the last CPU (taskset); --no-pin turns that off.
#
# Environment (as bench/run.sh):
#   BUILDDIR           build tree holding src/relais, plugins-staged/ and
#                      contrib/whoami/whoami (default: $PWD when it holds
#                      src/relais, else /tmp/build-bench; build it with
#                      CFLAGS="-O2 -g")
#   RELAIS             relais binary (default $BUILDDIR/src/relais)
#   RELAIS_PLUGIN_DIR  plugin directory (default $BUILDDIR/plugins-staged)
#   WHOAMI             whoami binary (default $BUILDDIR/contrib/whoami/whoami)
#   CC                 compiler for lbpick (default gcc)
#
# Needs: wrk, curl, taskset, a C compiler.  Only 127.0.0.1 and free ports
# (tests/servers/common.sh) are used; every process started here is
# stopped on exit (Ctrl-C included) and its files removed.  Takes about
# 1 min (lbpick) + (1 + rounds) x strategies x seconds.
set -euo pipefail

ROUNDS=3; SECS=5; CONNS=64; DELAY=20; STRATEGIES="wrr p2c leastconn leasttime"
PICKS=2000000; LBPICK_THREADS=2; DO_LBPICK=1; DO_P99=1; PIN=1
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2;;
    --seconds) SECS="$2"; shift 2;;
    --conns) CONNS="$2"; shift 2;;
    --delay) DELAY="$2"; shift 2;;
    --strategies) STRATEGIES="$2"; shift 2;;
    --picks) PICKS="$2"; shift 2;;
    --lbpick-threads) LBPICK_THREADS="$2"; shift 2;;
    --no-lbpick) DO_LBPICK=0; shift;;
    --no-p99) DO_P99=0; shift;;
    --no-pin) PIN=0; shift;;
    -h|--help) usage; exit 0;;
    *) echo "lb.sh: unknown argument $1 (--help)" >&2; exit 2;;
  esac
done
for v in "$ROUNDS" "$SECS" "$CONNS" "$DELAY" "$PICKS"; do
  case "$v" in ''|*[!0-9]*|0) echo "lb.sh: --rounds, --seconds, --conns, --delay, --picks take a positive integer" >&2; exit 2;; esac
done
[ "$SECS" -le 600 ] || { echo "lb.sh: --seconds is at most 600" >&2; exit 2; }
[ "$ROUNDS" -le 50 ] || { echo "lb.sh: --rounds is at most 50" >&2; exit 2; }
case "$LBPICK_THREADS" in 1|2) ;; *) echo "lb.sh: --lbpick-threads is 1 or 2" >&2; exit 2;; esac
for s in $STRATEGIES; do
  case "$s" in wrr|p2c|leastconn|leasttime|hrw|chash) ;;
    *) echo "lb.sh: unknown strategy $s (wrr p2c leastconn leasttime hrw chash)" >&2; exit 2;; esac
done
CC=${CC:-gcc}
for t in wrk curl "$CC"; do
  command -v "$t" >/dev/null || { echo "lb.sh: $t not found (apt-get install wrk curl gcc)" >&2; exit 2; }
done

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/.." && pwd)
if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
[ -d "$BUILDDIR" ] || { echo "lb.sh: no build directory $BUILDDIR (set BUILDDIR)" >&2; exit 2; }
BUILDDIR=$(cd "$BUILDDIR" && pwd)
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
WHOAMI=${WHOAMI:-$BUILDDIR/contrib/whoami/whoami}
[ -x "$RELAIS" ] || { echo "lb.sh: no relais binary at $RELAIS (set BUILDDIR or RELAIS)" >&2; exit 2; }
[ -x "$WHOAMI" ] || { echo "lb.sh: no whoami binary at $WHOAMI (set BUILDDIR or WHOAMI)" >&2; exit 2; }
[ -d "$RELAIS_PLUGIN_DIR" ] || { echo "lb.sh: no plugin directory $RELAIS_PLUGIN_DIR" >&2; exit 2; }
RELAIS=$(cd "$(dirname "$RELAIS")" && pwd)/$(basename "$RELAIS")
RELAIS_PLUGIN_DIR=$(cd "$RELAIS_PLUGIN_DIR" && pwd)

. "$(dirname "$0")/common.sh"
bench_workdir relais-lb-bench

PX=(); LD=(); BOTH=(); PINDESC="none"
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  last=$(( $(nproc) - 1 )); PX=(taskset -c 0); LD=(taskset -c "$last"); BOTH=(taskset -c "0,$last")
  PINDESC="relais cpu0, backends+wrk cpu$last"
fi

echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | head -1))"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -sr)  cores: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. pick cost
if [ "$DO_LBPICK" = 1 ]; then
  "$CC" -std=gnu11 -O2 -g -Wall -Wextra -I"$SRCDIR/sdk" "$HERE/lbpick.c" -o "$W/lbpick" -ldl -pthread
  echo
  echo "## pick cost: lbpick ($("$CC" --version | head -1), -O2), pinned: ${PX[*]:-no}"
  "${PX[@]}" "$W/lbpick" --dir "$RELAIS_PLUGIN_DIR" --picks "$PICKS" --threads 1
  if [ "$LBPICK_THREADS" = 2 ]; then
    echo
    echo "## pick cost, two threads on one instance, pinned: ${BOTH[*]:-no}"
    "${BOTH[@]}" "$W/lbpick" --dir "$RELAIS_PLUGIN_DIR" --picks "$PICKS" --threads 2
  fi
fi
[ "$DO_P99" = 1 ] || exit 0

# ---- 2. p99 with one slow server of four
# free_port: the tests' helper (tests/servers/common.sh): a free loopback
# port below the ephemeral range, reserved against concurrent runs.
. "$SRCDIR/tests/servers/common.sh"
BACKENDS=(slow fast1 fast2 fast3)
declare -A BPORT
for b in "${BACKENDS[@]}"; do
  BPORT[$b]=$(rt_free_port)
  d=0; [ "$b" = slow ] && d=$DELAY
  : >"$W/$b.log"
  "${LD[@]}" "$WHOAMI" --addr 127.0.0.1 --port "${BPORT[$b]}" --name "$b" --delay "$d" \
    --log "$W/$b.log" >"$W/$b.out" 2>&1 & PIDS+=($!)
done
for b in "${BACKENDS[@]}"; do
  rt_wait_port "${BPORT[$b]}" 10 || { echo "lb.sh: whoami $b did not start" >&2; cat "$W/$b.out" >&2; exit 1; }
done

PORT=$(rt_free_port)
cat >"$W/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$PORT"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$W/relais.dynamic.yaml"
    watch: false
log:
  level: INFO
EOF
{
  echo "http:"
  echo "  routers:"
  for s in $STRATEGIES; do
    # shellcheck disable=SC2016  # the backticks are the rule's
    printf '    %s:\n      rule: "Host(`%s.lb.test`)"\n      service: %s\n' "$s" "$s" "$s"
  done
  echo "  services:"
  for s in $STRATEGIES; do
    printf '    %s:\n      loadBalancer:\n        strategy: %s\n        servers:\n' "$s" "$s"
    for b in "${BACKENDS[@]}"; do
      printf '          - url: "http://127.0.0.1:%s"\n' "${BPORT[$b]}"
    done
  done
} >"$W/relais.dynamic.yaml"
if ! out=$("$RELAIS" --check --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); then
  echo "$out" >&2; echo "lb.sh: relais --check failed" >&2; exit 1
fi
"${PX[@]}" "$RELAIS" --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --workers 1 \
  >"$W/relais.log" 2>&1 & PIDS+=($!); RELAIS_PID=$!

# Every service answers, and a request through it reaches a backend.
for s in $STRATEGIES; do
  okay=0
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $s.lb.test" "http://127.0.0.1:$PORT/bench" || true)
    [ "$code" = 200 ] && { okay=1; break; }
    sleep 0.1
  done
  [ "$okay" = 1 ] || { echo "lb.sh: service $s does not answer 200 (last: $code)" >&2; tail -20 "$W/relais.log" >&2; exit 1; }
done

to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s -> ms
  awk -v v="$1" 'BEGIN{
    if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 }
    else printf "nan" }'
}
lines() { wc -l <"$W/$1.log"; }

# run_wrk STRATEGY SECONDS: one wrk run against the strategy's service
# (bounded by timeout); prints wrk's output.
run_wrk() {
  timeout $(( $2 + 30 )) "${LD[@]}" wrk -t1 -c"$CONNS" -d"$2s" --latency \
    -H "Host: $1.lb.test" "http://127.0.0.1:$PORT/bench" 2>&1 || true
}

# Warm-up: one short run per strategy (connections to the backends, the
# strategies' state), not counted.
for s in $STRATEGIES; do run_wrk "$s" 1 >/dev/null; done

declare -A RPS P50 P99 SLOW ERRS
for s in $STRATEGIES; do ERRS[$s]="0 0 0 0 0"; done
for _ in $(seq 1 "$ROUNDS"); do
  for s in $STRATEGIES; do
    kill -0 "$RELAIS_PID" 2>/dev/null || { echo "lb.sh: relais died" >&2; tail -20 "$W/relais.log" >&2; exit 1; }
    declare -A before=()
    for b in "${BACKENDS[@]}"; do before[$b]=$(lines "$b"); done
    out=$(run_wrk "$s" "$SECS")
    sleep 0.2   # requests still in flight at wrk's end reach the logs
    tot=0; slow=0
    for b in "${BACKENDS[@]}"; do
      d=$(( $(lines "$b") - ${before[$b]} ))
      tot=$(( tot + d )); [ "$b" = slow ] && slow=$d
    done
    rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
    if [ -z "$rps" ]; then
      echo "lb.sh: wrk gave no result for $s: $(tail -1 <<<"$out")" >&2
      continue
    fi
    RPS[$s]+="$rps "
    P50[$s]+="$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")") "
    P99[$s]+="$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")") "
    [ "$tot" -gt 0 ] && SLOW[$s]+="$(awk -v a="$slow" -v t="$tot" 'BEGIN{printf "%.2f", 100 * a / t}') "
    ERRS[$s]=$(awk -v prev="${ERRS[$s]}" '
      BEGIN { split(prev, a, " ") }
      /Non-2xx or 3xx responses:/ { a[1] += $NF }
      /Socket errors:/ { gsub(/,/, ""); a[2] += $4; a[3] += $6; a[4] += $8; a[5] += $10 }
      END { print a[1], a[2], a[3], a[4], a[5] }' <<<"$out")
  done
done


echo
echo "## p99 with one slow server of four (relais --workers 1)"
echo "# backends: whoami x4 (slow: --delay $DELAY ms, first in the list; fast1-3: no delay); GET /bench"
printf "# wrk -t1 -c%s -d%ss --latency; rounds=%s (interleaved: %s); pin=%s; load after: %s\n" \
  "$CONNS" "$SECS" "$ROUNDS" "$STRATEGIES" "$PINDESC" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %10s %8s %9s %9s %11s  %s\n" strategy req/s spread% p50_ms p99_ms slow_share% errors
for s in $STRATEGIES; do
  printf "%-10s %10.0f %8s %9s %9s %11s  %s\n" "$s" "$(median <<<"${RPS[$s]:-}")" \
    "$(spread "${RPS[$s]:-}")" "$(median <<<"${P50[$s]:-}")" "$(median <<<"${P99[$s]:-}")" \
    "$(median <<<"${SLOW[$s]:-}")" "$(errtext "${ERRS[$s]}")"
done
