# lib.sh — shared helpers of the black-box tests (sourced, bash).
#
# Environment (set by `make check`, or by hand):
#   RELAIS_BUILDDIR   build tree (src/relais, contrib/whoami/whoami)
#   RELAIS_SRCDIR     source tree
#   RELAIS_PLUGIN_DIR staged in-tree plugins (file.so, wrr.so, ...)
#   RELAIS_TEST_PLUGIN_DIR test-only plugins (tests/plugins/.libs)
# Output is TAP: `ok N - what` / `not ok N - what`, then `1..N`.

set -u
RELAIS_BUILDDIR=${RELAIS_BUILDDIR:-$(pwd)}
RELAIS_SRCDIR=${RELAIS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$RELAIS_BUILDDIR/plugins-staged}
RELAIS_TEST_PLUGIN_DIR=${RELAIS_TEST_PLUGIN_DIR:-$RELAIS_BUILDDIR/tests/plugins/.libs}
RELAIS=${RELAIS:-$RELAIS_BUILDDIR/src/relais}
WHOAMI=${WHOAMI:-$RELAIS_BUILDDIR/contrib/whoami/whoami}

T=$(mktemp -d /tmp/relais-test.XXXXXX)
TAP_N=0
TAP_FAILED=0
PIDS=()

# Kills every process started here and removes the scratch directory.
t_cleanup() {
  local p
  local i alive
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for i in $(seq 1 60); do
    alive=0
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "# scratch kept in $T"; else rm -rf "$T"; fi
}
trap t_cleanup EXIT

# ok DESC CMD...: runs CMD; passes when it exits 0.
ok() {
  local desc=$1; shift
  TAP_N=$((TAP_N + 1))
  if "$@"; then echo "ok $TAP_N - $desc"
  else echo "not ok $TAP_N - $desc"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}

# is DESC EXPECTED ACTUAL: passes when equal; shows both otherwise.
is() {
  TAP_N=$((TAP_N + 1))
  if [ "$2" = "$3" ]; then echo "ok $TAP_N - $1"
  else
    echo "not ok $TAP_N - $1"
    printf '#   expected: %s\n#   got:      %s\n' "$2" "$3" | head -20
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# like DESC REGEX ACTUAL: passes when ACTUAL matches the extended regex.
like() {
  TAP_N=$((TAP_N + 1))
  if printf '%s' "$3" | grep -Eq -- "$2"; then echo "ok $TAP_N - $1"
  else
    echo "not ok $TAP_N - $1"
    printf '#   expected to match: %s\n#   got: %s\n' "$2" "$3" | head -20
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# Ends the test: prints the plan, exits 1 on any failure.
t_done() {
  echo "1..$TAP_N"
  [ "$TAP_FAILED" -eq 0 ]
  exit $?
}

# Port helpers (rt_free_port, rt_pick_port, rt_wait_port) shared with the
# server helpers in tests/servers/ and bench/routers.sh.
. "$(dirname "${BASH_SOURCE[0]}")/../servers/common.sh"

# free_port: prints a loopback TCP port that no socket (TCP or UDP, any
# state) uses per /proc/net, that nothing answers on, below the kernel's
# range for outgoing connections (so no client socket can take it
# meanwhile), and reserved against concurrent tests: rt_free_port.
free_port() { rt_free_port; }

# wait_port PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT.
wait_port() { rt_wait_port "$@"; }

# plugin_dir_own [SO...]: a plugin directory of this test's own, $T/plugins,
# holding symlinks to every staged plugin ($RELAIS_PLUGIN_DIR/*.so) and to
# each extra SO given (which replaces a staged one of the same name);
# sets and exports PLUGIN_DIR (used by start_relais).
plugin_dir_own() {
  local f
  PLUGIN_DIR=$T/plugins
  mkdir -p "$PLUGIN_DIR"
  for f in "$RELAIS_PLUGIN_DIR"/*.so "$@"; do
    [ -e "$f" ] && ln -sfn "$f" "$PLUGIN_DIR/"
  done
  export PLUGIN_DIR
}

# start_whoami NAME [ARGS...]: starts a whoami named NAME on a free port;
# sets WHOAMI_PORT; its request log is $T/NAME.log.
start_whoami() {
  local name=$1; shift
  WHOAMI_PORT=$(free_port)
  "$WHOAMI" --addr 127.0.0.1 --port "$WHOAMI_PORT" --name "$name" --log "$T/$name.log" "$@" \
    >"$T/$name.out" 2>&1 &
  PIDS+=($!)
  : >"$T/$name.log"
  wait_port "$WHOAMI_PORT"
}

# start_relais CONFIG PORT [ARGS...]: starts relais and waits for PORT;
# its log is $T/relais.log; sets RELAIS_PID.
start_relais() {
  local cfg=$1 port=$2; shift 2
  "$RELAIS" --config "$cfg" --plugin-dir "${PLUGIN_DIR:-$RELAIS_PLUGIN_DIR}" "$@" \
    >>"$T/relais.log" 2>&1 &
  RELAIS_PID=$!
  PIDS+=($RELAIS_PID)
  wait_port "$port"
}

# stop_relais_clean [PID]: SIGTERM to relais (default $RELAIS_PID); checks
# that it stops within 15 s with status 0 and that its log holds no
# sanitizer report (ASan/UBSan builds abort on one; leaks are reported at
# exit).  Two TAP checks.
stop_relais_clean() {
  local pid=${1:-$RELAIS_PID} rc
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then rc=timeout; else wait "$pid"; rc=$?; fi
  is "relais stopped on SIGTERM with status 0" 0 "$rc"
  is "relais logged no sanitizer report" "" \
    "$(grep -E 'Sanitizer|runtime error' "$T/relais.log" | head -3)"
}

# wait_log REGEX [SECONDS]: waits until the relais log matches.
wait_log() {
  local i n=$(( ${2:-5} * 20 ))
  for ((i = 0; i < n; i++)); do
    grep -Eq -- "$1" "$T/relais.log" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# pki_ca DIR NAME [CN]: a self-signed P-256 CA, DIR/NAME.pem and DIR/NAME.key
# (valid 2 days).  Output goes to DIR/pki.log; returns openssl's status.
pki_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=${3:-relais test $2}" -keyout "$1/$2.key" -out "$1/$2.pem" >>"$1/pki.log" 2>&1
}

# pki_leaf DIR NAME CA SAN [EXT-LINE] [SUBJECT]: a P-256 certificate
# DIR/NAME.pem (key DIR/NAME.key) signed by the CA DIR/CA.pem, with
# subjectAltName=SAN (e.g. "DNS:a.test,IP:127.0.0.1") and an optional
# extra extension line (e.g. "extendedKeyUsage=clientAuth").
pki_leaf() {
  local d=$1 n=$2 ca=$3 san=$4 ext=${5:-} subj=${6:-/CN=$2}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$d/$n.key" -out "$d/$n.csr" >>"$d/pki.log" 2>&1 &&
  printf 'subjectAltName=%s\n%s\n' "$san" "$ext" >"$d/$n.ext" &&
  openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -CAcreateserial \
    -days 2 -extfile "$d/$n.ext" -out "$d/$n.pem" >>"$d/pki.log" 2>&1
}

# static_config FILE PORT DYNFILE [EXTRA-YAML]: writes a static config with
# one entry point "web" on PORT and the file provider on DYNFILE.
static_config() {
  cat >"$1" <<EOF2
entryPoints:
  web:
    address: "127.0.0.1:$2"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$3"
log:
  level: DEBUG
workers: 2
${4:-}
EOF2
}
