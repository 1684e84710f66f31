#!/bin/bash
# test_vectors.sh — the llhttp request vectors against the running proxy.
#
# One whoami (with --log) behind relais, one router matching every path of
# every Host; vectors.py replays each case on its own connection and checks
# relais' answer and what reached the backend (see vectors.py for the
# verdicts).  Ends with relais still answering a plain request with 200.
. "$(dirname "$0")/lib.sh"

VECTORS=${RELAIS_VECTORS:-$RELAIS_SRCDIR/../shared/vectors/llhttp}
HERE=$(cd "$(dirname "$0")" && pwd)

if ! command -v python3 >/dev/null 2>&1; then
  echo "Bail out! python3 not found (CI installs it: see tests/run.sh)"
  exit 1
fi

start_whoami vec || { echo "Bail out! whoami did not start"; exit 1; }
PORT=$(free_port)
cat >"$T/dynamic.yaml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: vec
  services:
    vec:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$WHOAMI_PORT"
EOF
static_config "$T/relais.yaml" "$PORT" "$T/dynamic.yaml"
start_relais "$T/relais.yaml" "$PORT" || {
  echo "Bail out! relais did not start"; sed 's/^/# /' "$T/relais.log"; exit 1; }
# the routing table may follow the listener by a moment
wait_log "router|route|snapshot|config" 2 || true

# a plain request first: the route works (otherwise every case is moot)
probe() {
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  printf 'GET /probe%s HTTP/1.1\r\nHost: vectors.test\r\nConnection: close\r\n\r\n' "$1" >&3
  local line
  IFS= read -r -t 5 line <&3
  exec 3<&- 3>&-
  printf '%s' "${line%$'\r'}"
}
st=
for _ in $(seq 1 40); do
  st=$(probe /start)
  [ "$st" = "HTTP/1.1 200 OK" ] && break
  sleep 0.05
done
is "relais routes a plain request to whoami" "HTTP/1.1 200 OK" "$st"

python3 "$HERE/vectors.py" --port "$PORT" --log "$T/vec.log" --dir "$VECTORS" \
  --first $((TAP_N + 1)) --count-file "$T/count"
read -r n f <"$T/count" || { n=0; f=1; }
TAP_N=$((TAP_N + n))
TAP_FAILED=$((TAP_FAILED + f))

ok "relais is still running after the vectors" kill -0 "$RELAIS_PID"
is "relais still answers a plain request with 200" "HTTP/1.1 200 OK" "$(probe /end)"
if [ "$TAP_FAILED" -ne 0 ]; then
  echo "# relais log (last 30 lines):"
  tail -30 "$T/relais.log" | sed 's/^/#   /'
fi
t_done
