#!/usr/bin/env bash
# tests/fuzz/run.sh — builds the libFuzzer targets of tests/fuzz/ with
# clang (ASan + UBSan + libFuzzer) straight from the src/*.c files they
# need, then runs each for $FUZZ_SECONDS on a copy of its seed corpus.
#
# Usage: tests/fuzz/run.sh [--merge] [--build-only] [TARGET...]
#   TARGET        http1 rule config kv labels (default: all)
#   --merge       afterwards, merge the inputs that reach new code (edges)
#                 into the tree's corpus (tests/fuzz/corpus/TARGET);
#                 without it the tree is never written
#   --build-only  build the binaries, run nothing
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_JOBS     targets run at the same time (default 1)
#   FUZZ_CC       the compiler (default clang; needs -fsanitize=fuzzer)
#   FUZZ_CFLAGS   extra compiler flags (e.g. -DFZ_KNOWN_TOPLEVEL_LIST to
#                 step over a known bug while looking for others)
#   FUZZ_WORKDIR  where binaries, corpus copies and logs go (default: a new
#                 mktemp -d under /tmp, removed when every target passed
#                 unless FUZZ_KEEP=1)
#   FUZZ_ARGS     extra libFuzzer flags for every run (e.g. -max_len=8192)
#   FUZZ_NICE     niceness of the fuzzing processes (default 0)
#
# Output: one line per target, "fuzz_http1: N execs, 0 crashes (cov: C
# ft: F, corpus: K files)"; on a crash, the crashing input's path and the
# head of the sanitizer report.  Exit status non-zero when a target
# crashed or did not build.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_ARGS=${FUZZ_ARGS:-}
FUZZ_NICE=${FUZZ_NICE:-0}
ALL_TARGETS="http1 rule config kv labels"

MERGE=0
BUILD_ONLY=0
TARGETS=""
for a in "$@"; do
  case "$a" in
    --merge) MERGE=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) case " $ALL_TARGETS " in
         *" $a "*) TARGETS="$TARGETS $a" ;;
         *) echo "run.sh: unknown target $a (have: $ALL_TARGETS)" >&2; exit 2 ;;
       esac ;;
  esac
done
[ -n "$TARGETS" ] || TARGETS=$ALL_TARGETS

if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
  echo "run.sh: $FUZZ_CC not found (apt-get install clang)" >&2
  exit 2
fi
for pc in jansson libpcre2-8 yaml-0.1; do
  pkg-config --exists "$pc" || { echo "run.sh: pkg-config $pc missing" >&2; exit 2; }
done

if [ -n "${FUZZ_WORKDIR:-}" ]; then
  WORK=$FUZZ_WORKDIR
  mkdir -p "$WORK" || exit 2
else
  WORK=$(mktemp -d /tmp/relais-fuzz.XXXXXX) || exit 2
fi
mkdir -p "$WORK/include"
# src/*.c include "config.h": all they need from it is _GNU_SOURCE.
printf '#ifndef _GNU_SOURCE\n#define _GNU_SOURCE\n#endif\n' >"$WORK/include/config.h"

CFLAGS_FUZZ="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -std=gnu11 -Wall -Wextra -Werror -Wno-unused-function
  -I$WORK/include -I$SRC/src -I$SRC/sdk -I$HERE ${FUZZ_CFLAGS:-}"

# sources_of TARGET: the .c files linked into fuzz_TARGET
sources_of() {
  case "$1" in
    http1) echo "src/http1.c" ;;
    rule) echo "src/rule.c" ;;
    config) echo "src/conf.c" ;;
    kv) echo "src/kvconf.c" ;;
    labels) echo "src/kvconf.c src/conf.c plugins/providers/docker/constraints.c plugins/providers/docker/target.c" ;;
  esac
}
# libs_of TARGET: pkg-config modules
libs_of() {
  case "$1" in
    http1) echo "" ;;
    rule) echo "libpcre2-8" ;;
    config) echo "jansson yaml-0.1" ;;
    kv) echo "jansson" ;;
    labels) echo "jansson yaml-0.1 libpcre2-8" ;;
  esac
}

# build TARGET: compiles $WORK/fuzz_TARGET; 0 or 1 (log in build-TARGET.log)
build() {
  local t=$1 srcs="" s mods extra=""
  for s in $(sources_of "$t"); do srcs="$srcs $SRC/$s"; done
  mods=$(libs_of "$t")
  [ "$t" = labels ] && extra="-I$SRC/plugins/providers/docker"
  # shellcheck disable=SC2086
  "$FUZZ_CC" $CFLAGS_FUZZ $extra ${mods:+$(pkg-config --cflags $mods)} \
    -o "$WORK/fuzz_$t" "$HERE/fuzz_$t.c" $srcs \
    ${mods:+$(pkg-config --libs $mods)} -lpthread >"$WORK/build-$t.log" 2>&1
}

# run_one TARGET: fuzzes a copy of the seed corpus; writes $WORK/result-TARGET
run_one() {
  local t=$1
  local corpus="$WORK/corpus-$t" crashes="$WORK/crashes-$t" dict="" rc
  rm -rf "$corpus" "$crashes"
  mkdir -p "$corpus" "$crashes"
  [ -d "$HERE/corpus/$t" ] && cp -R "$HERE/corpus/$t/." "$corpus/"
  [ -f "$HERE/$t.dict" ] && dict="-dict=$HERE/$t.dict"
  # shellcheck disable=SC2086
  ( cd "$WORK" && nice -n "$FUZZ_NICE" "$WORK/fuzz_$t" -max_total_time="$FUZZ_SECONDS" \
      -print_final_stats=1 -timeout=30 -rss_limit_mb=2560 -max_len=16384 \
      -artifact_prefix="$crashes/" $dict $FUZZ_ARGS "$corpus" >"$WORK/fuzz-$t.log" 2>&1 )
  rc=$?
  echo "$rc" >"$WORK/rc-$t"
  if [ "$MERGE" = 1 ] && [ "$rc" = 0 ]; then
    mkdir -p "$HERE/corpus/$t"
    # -use_counters=0: only inputs that reach new edges, not new hit counts
    "$WORK/fuzz_$t" -merge=1 -use_counters=0 -max_len=16384 -timeout=30 -rss_limit_mb=2560 \
      "$HERE/corpus/$t" "$corpus" >"$WORK/merge-$t.log" 2>&1
  fi
}

# report TARGET: prints the summary line (and the crash, if any); 0 or 1
report() {
  local t=$1
  local log="$WORK/fuzz-$t.log" rc execs cov ft ncrash files f
  rc=$(cat "$WORK/rc-$t" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | sed 's/cov: //')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | sed 's/ft: //')
  files=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | sed 's/corp: //')
  ncrash=$(find "$WORK/crashes-$t" -type f 2>/dev/null | wc -l)
  if [ "$rc" != 0 ] && [ "$ncrash" = 0 ]; then ncrash=1; fi
  echo "fuzz_$t: ${execs:-0} execs, $ncrash crashes (cov: ${cov:-?} ft: ${ft:-?}, corpus: ${files:-?} files)"
  if [ "$rc" != 0 ]; then
    for f in "$WORK"/crashes-"$t"/*; do
      [ -f "$f" ] && echo "  crashing input: $f"
    done
    echo "  log: $log; report head:"
    awk '/ERROR: |runtime error|property violated|deadly signal|^==[0-9]+==/ {on=1} on && n < 30 {print "    " $0; n++}' "$log"
    return 1
  fi
  return 0
}

fail=0
for t in $TARGETS; do
  if ! build "$t"; then
    echo "fuzz_$t: build failed"
    sed 's/^/    /' "$WORK/build-$t.log" | head -40
    fail=1
  fi
done
if [ "$fail" = 1 ]; then
  echo "run.sh: build failed (work dir $WORK)"
  exit 1
fi
if [ "$BUILD_ONLY" = 1 ]; then
  echo "run.sh: built$(for t in $TARGETS; do printf ' %s' "$WORK/fuzz_$t"; done)"
  exit 0
fi

# at most FUZZ_JOBS targets at a time
running=0
for t in $TARGETS; do
  if [ "$running" -ge "$FUZZ_JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

for t in $TARGETS; do
  report "$t" || fail=1
done
if [ "$fail" = 0 ] && [ "${FUZZ_KEEP:-0}" != 1 ] && [ -z "${FUZZ_WORKDIR:-}" ]; then
  rm -rf "$WORK"
else
  echo "run.sh: work dir $WORK"
fi
exit "$fail"
