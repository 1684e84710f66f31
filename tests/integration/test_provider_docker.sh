#!/usr/bin/env bash
# The docker provider against a private Docker engine (tests/servers/
# dockerd.sh) with busybox httpd containers on the host network: routes from
# container labels (explicit router, default rule, traefik.enable=false,
# exposedByDefault=false + traefik.enable=true, labelPrefix relais), stop/start and
# pause/unpause followed within 1 s (events), dockerd killed → failure
# logged once and the last configuration keeps serving, dockerd restarted →
# updates resume, bad options refused by --check.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/dockerd.sh"
. "$RELAIS_SRCDIR/tests/servers/busybox-image.sh"

if ! command -v dockerd >/dev/null || ! command -v curl >/dev/null; then
  echo "Bail out! dockerd or curl not installed (apt-get install docker.io busybox-static curl)"
  exit 1
fi
[ -f "$RELAIS_PLUGIN_DIR/docker.so" ] || { echo "Bail out! docker.so not built"; exit 1; }
RELAIS2_PID=""
# dockerd_stop once more after a stop (DOCKER_SOCK unset) trips set -u
dk_stop() { DOCKER_SOCK=${DOCKER_SOCK:-$T/d/docker.sock}; dockerd_stop; }
trap '[ -n "$RELAIS2_PID" ] && kill "$RELAIS2_PID" 2>/dev/null; dk_stop >/dev/null 2>&1; t_cleanup' EXIT

# free_port (overrides lib.sh's): a loopback port below the ephemeral range
# that no socket uses at all
free_port() {
  local p hex
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    hex=$(printf '%04X' "$p")
    grep -qE "^ *[0-9]+: [0-9A-F]+:$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
    echo "$p"; return 0
  done
  return 1
}

PLUGIN_DIR=$T/plugins
mkdir -p "$PLUGIN_DIR"
for f in "$RELAIS_PLUGIN_DIR"/*.so; do ln -s "$f" "$PLUGIN_DIR/"; done
export PLUGIN_DIR

dockerd_start "$T/d" >/dev/null || { echo "Bail out! dockerd does not start"; exit 1; }
busybox_image_build >/dev/null || { echo "Bail out! busybox image not built"; exit 1; }

# run_c NAME PORT [LABEL...]: a busybox httpd container on 127.0.0.1:PORT
# answering "NAME" on /
run_c() {
  local name=$1 port=$2 args=() l; shift 2
  for l in "$@"; do args+=(--label "$l"); done
  docker_cli run -d --network host --init --name "$name" "${args[@]}" "$BUSYBOX_IMAGE" \
    sh -c "mkdir -p /w && echo $name >/w/index.html && exec busybox httpd -f -p 127.0.0.1:$port -h /w" \
    >/dev/null
}
RP=$(free_port); RP2=$(free_port)
P1=$(free_port); P2=$(free_port); P3=$(free_port); P4=$(free_port); P5=$(free_port); P6=$(free_port)
body() { curl -s --max-time 2 -H "Host: $1" "http://127.0.0.1:${2:-$RP}/"; }
code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:${2:-$RP}/"; }
# until_eq SECONDS EXPECTED CMD...: waits until CMD prints EXPECTED
until_eq() {
  local n=$(( $1 * 20 )) want=$2 i; shift 2
  for ((i = 0; i < n; i++)); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}
# write_config FILE PORT [EXTRA-DOCKER-OPTIONS]
write_config() {
  cat >"$1" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$2"
providers:
  providersThrottleDuration: 0s
  docker:
    endpoint: "unix://$DOCKER_SOCK"
${3:-}
log:
  level: DEBUG
workers: 2
EOF
}

run_c c1 "$P1" 'traefik.http.routers.web.rule=Host(`web.test`)' \
  "traefik.http.services.web.loadbalancer.server.port=$P1"
run_c bb_two "$P2" "traefik.http.services.two.loadbalancer.server.port=$P2"
run_c c3 "$P3" traefik.enable=false 'traefik.http.routers.off.rule=Host(`off.test`)' \
  "traefik.http.services.off.loadbalancer.server.port=$P3"
run_c c4 "$P4" traefik.enable=true 'traefik.http.routers.en.rule=Host(`en.test`)' \
  "traefik.http.services.en.loadbalancer.server.port=$P4"
run_c c6 "$P6" relais.enable=true 'relais.http.routers.six.rule=Host(`six.test`)' \
  "relais.http.services.six.loadbalancer.server.port=$P6"
run_c noport "$P5" 'traefik.http.routers.np.rule=Host(`np.test`)'
for p in $P1 $P2 $P3 $P4 $P6; do wait_port "$p" 10; done

write_config "$T/relais.yaml" "$RP"
start_relais "$T/relais.yaml" "$RP"
write_config "$T/relais2.yaml" "$RP2" "    exposedByDefault: false
    labelPrefix: relais"
"$RELAIS" --config "$T/relais2.yaml" --plugin-dir "$PLUGIN_DIR" >>"$T/relais2.log" 2>&1 &
RELAIS2_PID=$!
PIDS+=("$RELAIS2_PID")
wait_port "$RP2"

ok "explicit router served by its container" until_eq 3 c1 body web.test
is "default rule Host(normalized name) served" bb_two "$(body bb-two)"
is "traefik.enable=false is not routed" 404 "$(code off.test)"
is "exposedByDefault: traefik.enable=true is routed" c4 "$(body en.test)"
is "a container without a port label is not routed" 404 "$(code np.test)"
ok "a container without a port label is warned about" wait_log "container noport: no traefik.*port label" 1
is "... once" 1 "$(grep -c "container noport: no traefik" "$T/relais.log")"
ok "exposedByDefault=false + traefik.enable=true routed (traefik.* read with labelPrefix relais)" until_eq 3 c4 body en.test "$RP2"
is "labelPrefix relais: relais.* labels routed" c6 "$(body six.test "$RP2")"
is "labelPrefix traefik: relais.* labels ignored" 404 "$(code six.test)"
is "exposedByDefault=false: unlabelled container not routed" 404 "$(code web.test "$RP2")"
is "exposedByDefault=false: default rule not routed" 404 "$(code bb-two "$RP2")"
kill "$RELAIS2_PID" 2>/dev/null; wait "$RELAIS2_PID" 2>/dev/null; RELAIS2_PID=""

docker_cli stop -t 1 c1 >/dev/null
ok "stopped container → 404 within 1 s" until_eq 1 404 code web.test
docker_cli start c1 >/dev/null
ok "started again → served within 1 s" until_eq 1 c1 body web.test
docker_cli pause bb_two >/dev/null
ok "paused container → 404 within 1 s" until_eq 1 404 code bb-two
docker_cli unpause bb_two >/dev/null
ok "unpaused → served within 1 s" until_eq 1 bb_two body bb-two

# dockerd killed (containerd and the containers live on)
{ kill -KILL "$DOCKERD_PID"; wait "$DOCKERD_PID"; } 2>/dev/null
ok "dockerd going away is logged" wait_log "provider docker.*last configuration keeps serving" 3
sleep 1.5
is "the failure is logged once" 1 "$(grep -c "provider docker.*last configuration keeps serving" "$T/relais.log")"
is "last configuration keeps serving" c1 "$(body web.test)"
# restart on the same data dir (this stops the old containers)
# (clean the old engine's containerd/shims first and wait until they are gone:
# a dying containerd can make the new one time out)
dockerd_restart() {
  local i
  dk_stop >/dev/null 2>&1
  for i in $(seq 1 100); do [ -z "$(_dockerd_leftovers)" ] && break; sleep 0.05; done
  dockerd_start "$T/d" >/dev/null
}
dockerd_restart || dockerd_restart || echo "# dockerd did not restart"
run_c c5 "$P5" 'traefik.http.routers.five.rule=Host(`five.test`)' \
  "traefik.http.services.five.loadbalancer.server.port=$P5" 2>/dev/null || \
  { docker_cli rm -f noport >/dev/null 2>&1; P5=$(free_port); run_c c5 "$P5" \
      'traefik.http.routers.five.rule=Host(`five.test`)' \
      "traefik.http.services.five.loadbalancer.server.port=$P5"; }
ok "after the restart a new container is routed" until_eq 8 c5 body five.test
ok "reachable again is logged" wait_log "provider docker.*reachable again" 1
docker_cli stop -t 1 c5 >/dev/null
ok "after the restart a stop is followed within 1 s" until_eq 1 404 code five.test
kill -TERM "$RELAIS_PID" 2>/dev/null; wait "$RELAIS_PID" 2>/dev/null

# ---- options ------------------------------------------------------------
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  docker:
    endpoint: "tcp://127.0.0.1:2375"
    defaultRule: "Host(\`{{ .Labels.x }}\`)"
    exposedByDefault: maybe
    bogus: 1
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad docker options" 1 "$rc"
like "tcp endpoint named" 'providers.docker.endpoint: .*not supported yet' "$out"
like "bad defaultRule named" 'providers.docker.defaultRule: ' "$out"
like "bad exposedByDefault named" 'providers.docker.exposedByDefault' "$out"
like "unknown option named" 'providers.docker.bogus: unknown option' "$out"
t_done
