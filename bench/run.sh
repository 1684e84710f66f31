#!/bin/bash
# bench/run.sh — relais side by side with nginx and HAProxy (shared
# bench/peers.sh), for /small and /16k.  Not a test: never run by make check.
#
# Usage: bench/run.sh [extra peers.sh arguments, e.g. --rounds 5 --seconds 10]
#
# Environment:
#   BUILDDIR           build tree holding src/relais and plugins-staged/
#                      (default: $PWD when it holds src/relais, else
#                      /tmp/build-bench; build it with CFLAGS="-O2 -g")
#   RELAIS             relais binary (default $BUILDDIR/src/relais)
#   RELAIS_PLUGIN_DIR  plugin directory (default $BUILDDIR/plugins-staged)
#   PEERS              peers.sh (default ../shared/bench/peers.sh next to
#                      the repository)
#   PATHS              URL paths to run (default "/small /16k")
#   PEERS_THREADS      is set by peers.sh from its --threads (default 1) and
#                      given to relais as --workers.
#
# relais runs with bench/relais-bench.yaml (entry point 127.0.0.1:18083,
# file provider on bench/relais-bench.dynamic.yaml → 127.0.0.1:18080).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/.." && pwd)
if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
BUILDDIR=$(cd "$BUILDDIR" && pwd)
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
PEERS=${PEERS:-$HERE/../../shared/bench/peers.sh}
PATHS=${PATHS:-/small /16k}

[ -x "$RELAIS" ] || { echo "run.sh: no relais binary at $RELAIS (set BUILDDIR or RELAIS)" >&2; exit 2; }
[ -d "$RELAIS_PLUGIN_DIR" ] || { echo "run.sh: no plugin directory $RELAIS_PLUGIN_DIR" >&2; exit 2; }
[ -r "$PEERS" ] || { echo "run.sh: no peers script at $PEERS (set PEERS)" >&2; exit 2; }
RELAIS=$(cd "$(dirname "$RELAIS")" && pwd)/$(basename "$RELAIS")
RELAIS_PLUGIN_DIR=$(cd "$RELAIS_PLUGIN_DIR" && pwd)

# The configuration names its dynamic file relative to the repository.
cd "$SRCDIR"
if ! out=$("$RELAIS" --check --config bench/relais-bench.yaml --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); then
  echo "$out" >&2; exit 1
fi

# peers.sh runs: bash -c "exec COMMAND" with PEERS_THREADS in the environment.
PROXY="'$RELAIS' --config bench/relais-bench.yaml --plugin-dir '$RELAIS_PLUGIN_DIR' --workers \${PEERS_THREADS:-1}"

echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | head -1))"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -sr)  cores: $(nproc)"
for p in $PATHS; do
  echo "# bash $PEERS --proxy \"$PROXY\" --path $p $*"
  bash "$PEERS" --proxy "$PROXY" --path "$p" "$@"
  echo
done
