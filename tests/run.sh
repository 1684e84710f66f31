#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine (root):
# installs the build and test dependencies, builds with -Werror and with
# AddressSanitizer + UndefinedBehaviorSanitizer, runs `make check` (unit
# tests, black-box tests, test plugins) and ends with one line
# "N passed, N failed".  Exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${BUILD:-$SRC/_build}

DEPS="build-essential autoconf automake libtool libtool-bin pkg-config
  libevent-dev libssl-dev libltdl-dev libjansson-dev libpcre2-dev libyaml-dev
  curl netcat-openbsd python3 varnish binutils redis-server redis-tools
  etcd-server etcd-client docker.io busybox-static openssl pebble
  zlib1g-dev libbrotli-dev libzstd-dev libcrypt-dev apache2-utils brotli zstd
  slowhttptest iproute2 clang libclang-rt-14-dev libnghttp2-dev nghttp2-client nghttp2-server nginx chromium prometheus
  python3-grpcio groff-base systemd"
missing=""
for p in $DEPS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null \
      || { echo "tests/run.sh: apt-get install failed:$missing"; echo "0 passed, 1 failed"; exit 1; }
  else
    echo "tests/run.sh: missing packages:$missing (run as root to install them)"
    echo "0 passed, 1 failed"; exit 1
  fi
fi

autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

TOTAL_PASS=0 TOTAL_FAIL=0 TOTAL_SKIP=0

# run_suite DIR [CONFIGURE-ARGS...]: builds in DIR, runs make check, adds
# its counts to the totals.
run_suite() {
  local dir=$1 rc pass fail err skip xpass f; shift
  mkdir -p "$dir"
  ( cd "$dir" || exit 1
    "$SRC/configure" -q --enable-werror "$@" >configure.out 2>&1 || { cat configure.out; exit 1; }
    make -j"$(nproc)" >build.out 2>&1 || { tail -50 build.out; exit 1; }
  ) || { TOTAL_FAIL=$((TOTAL_FAIL + 1)); echo "== build failed in $dir"; return; }
  ( cd "$dir" && make -j"$(nproc)" check >check.out 2>&1 )
  rc=$?
  echo "== $dir ($*): $(grep -E '^# (TOTAL|PASS|FAIL|ERROR|SKIP):' "$dir/check.out" | tr -s ' ' | tr '\n' ' ')"
  grep -E '^(FAIL|ERROR|XPASS):' "$dir/check.out"
  for f in $(grep -lE '^(not ok|Bail out)' $(find "$dir/tests" "$dir/contrib" -name '*.log' 2>/dev/null) 2>/dev/null); do
    echo "== $f"; grep -E '^(not ok|#|Bail)' "$f" | head -40
  done
  pass=$(sed -n 's/^# PASS: *//p' "$dir/check.out" | tail -1)
  fail=$(sed -n 's/^# FAIL: *//p' "$dir/check.out" | tail -1)
  err=$(sed -n 's/^# ERROR: *//p' "$dir/check.out" | tail -1)
  skip=$(sed -n 's/^# SKIP: *//p' "$dir/check.out" | tail -1)
  xpass=$(sed -n 's/^# XPASS: *//p' "$dir/check.out" | tail -1)
  fail=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} ))
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then tail -30 "$dir/check.out"; fail=1; fi
  grep -h '^SKIP:' "$dir/check.out" | head -20
  TOTAL_PASS=$((TOTAL_PASS + ${pass:-0}))
  TOTAL_FAIL=$((TOTAL_FAIL + fail))
  TOTAL_SKIP=$((TOTAL_SKIP + ${skip:-0}))
}

# 1. the plain optimised build (memory bounds are asserted on this one)
run_suite "$BUILD"
# 2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer;
#    any report aborts the process and fails its test; leaks are reported
#    at exit
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite "$BUILD-asan" --enable-sanitizers
# 3. fuzzing: every libFuzzer target of tests/fuzz for 60 s, two at a time
#    (one check per target; a crash, or a target that does not build, is a
#    failure)
FUZZ_SECONDS=${FUZZ_SECONDS:-60} FUZZ_JOBS=2 bash "$SRC/tests/fuzz/run.sh" >"$BUILD-fuzz.out" 2>&1
frc=$?
fpass=$(grep -cE '^fuzz_[a-z0-9]+: [0-9]+ execs, 0 crashes' "$BUILD-fuzz.out")
echo "== fuzz ($fpass targets clean, run.sh status $frc):"
grep -E '^(fuzz_|  |run.sh)' "$BUILD-fuzz.out" | head -60
TOTAL_PASS=$((TOTAL_PASS + fpass))
if [ "$frc" != 0 ]; then TOTAL_FAIL=$((TOTAL_FAIL + 1)); fi

# a skipped test counts as a failure in CI: CI installs what tests need
TOTAL_FAIL=$((TOTAL_FAIL + TOTAL_SKIP))
if [ "$TOTAL_SKIP" != 0 ]; then
  echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $TOTAL_SKIP skipped"
else
  echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
fi
[ "$TOTAL_FAIL" = 0 ]
