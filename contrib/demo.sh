#!/usr/bin/env bash
# Starts the README demo from a built source tree: two whoami backends on
# 127.0.0.1:8081 and :8082 and relais on 127.0.0.1:8000 (dashboard and API
# on 127.0.0.1:8080) with
# contrib/examples/relais.yaml (file provider watching
# contrib/examples/dynamic.yaml).  Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-.}
"$B/contrib/whoami/whoami" --addr 127.0.0.1 --port 8081 --name whoami-1 &
W1=$!
"$B/contrib/whoami/whoami" --addr 127.0.0.1 --port 8082 --name whoami-2 &
W2=$!
trap 'kill $W1 $W2 2>/dev/null' EXIT
cat <<MSG
relais demo: try
  curl -H 'Host: localhost' http://127.0.0.1:8000/
  curl http://127.0.0.1:8000/whoami/
the dashboard is at http://127.0.0.1:8080/dashboard/ (the API under /api/,
Prometheus metrics at /metrics, /ping), and edit
contrib/examples/dynamic.yaml while it runs.
MSG
"$B/src/relais" --config contrib/examples/relais.yaml --plugin-dir "$B/plugins-staged"
