#!/usr/bin/env bash
# The docker provider against a private Docker engine (tests/servers/
# dockerd.sh) with busybox httpd containers on the host network, listening
# on 127.0.0.1 only (the address selection of the other network modes is
# unit-tested by plugins/providers/docker/test_target.c over inspect
# documents): routes from container labels (explicit router, default rule,
# traefik.enable=false, exposedByDefault=false + traefik.enable=true,
# labelPrefix relais), the port from the single exposed port, several
# exposed ports or none without a port label → skipped with one warning,
# a server url label used as it is, constraints (Label, LabelRegex, !, &&)
# keeping and dropping containers, stop/start and pause/unpause followed
# within 1 s (events), a bounded load on a stable route with zero failures
# while other containers start, pause, stop and are relabelled (each change
# seen within 1 s), dockerd killed → failure logged once and the last
# configuration keeps serving, dockerd restarted → updates resume, bad
# options refused by --check.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/dockerd.sh"
. "$RELAIS_SRCDIR/tests/servers/busybox-image.sh"

if ! command -v dockerd >/dev/null || ! command -v curl >/dev/null; then
  echo "Bail out! dockerd or curl not installed (apt-get install docker.io busybox-static curl)"
  exit 1
fi
[ -f "$RELAIS_PLUGIN_DIR/docker.so" ] || { echo "Bail out! docker.so not built"; exit 1; }
RELAIS2_PID=""
RELAIS3_PID=""
LG_PID=""
# dockerd_stop once more after a stop (DOCKER_SOCK unset) trips set -u
dk_stop() { DOCKER_SOCK=${DOCKER_SOCK:-$T/d/docker.sock}; dockerd_stop; }
trap 'for p in "$RELAIS2_PID" "$RELAIS3_PID" "$LG_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; dk_stop >/dev/null 2>&1; t_cleanup' EXIT

plugin_dir_own

dockerd_start "$T/d" >/dev/null || { echo "Bail out! dockerd does not start"; exit 1; }
busybox_image_build >/dev/null || { echo "Bail out! busybox image not built"; exit 1; }

# run_x NAME PORT DOCKER-OPTIONS [LABEL...]: a busybox httpd container on
# the host network listening on 127.0.0.1:PORT, answering "NAME" on /;
# DOCKER-OPTIONS (word-split, e.g. "--expose 8080") go before the image
run_x() {
  local name=$1 port=$2 opts=$3 args=() l; shift 3
  for l in "$@"; do args+=(--label "$l"); done
  # shellcheck disable=SC2086
  docker_cli run -d --network host --init --name "$name" $opts "${args[@]}" "$BUSYBOX_IMAGE" \
    sh -c "mkdir -p /w && echo $name >/w/index.html && exec busybox httpd -f -p 127.0.0.1:$port -h /w" \
    >/dev/null
}
# run_c NAME PORT [LABEL...]: the same without options
run_c() { local name=$1 port=$2; shift 2; run_x "$name" "$port" "" "$@"; }
# port: a free port not handed out before in this test
USED=" "
port() {
  local p i
  for i in $(seq 1 50); do
    p=$(free_port) || return 1
    case "$USED" in *" $p "*) continue ;; esac
    USED="$USED$p "
    echo "$p"
    return 0
  done
  return 1
}
RP=$(port); RP2=$(port); RP3=$(port)
P1=$(port); P2=$(port); P3=$(port); P4=$(port); P5=$(port); P6=$(port)
PE=$(port); PM1=$(port); PM2=$(port); PU=$(port); PUP=$(port); PS=$(port); PN=$(port)
K1=$(port); K2=$(port); K3=$(port); K4=$(port)
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
run_c bb_two "$P2" "traefik.http.services.two.loadbalancer.server.port=$P2" \
  traefik.http.services.two.loadbalancer.server.scheme=http
run_c c3 "$P3" traefik.enable=false 'traefik.http.routers.off.rule=Host(`off.test`)' \
  "traefik.http.services.off.loadbalancer.server.port=$P3"
run_c c4 "$P4" traefik.enable=true 'traefik.http.routers.en.rule=Host(`en.test`)' \
  "traefik.http.services.en.loadbalancer.server.port=$P4"
run_c c6 "$P6" relais.enable=true 'relais.http.routers.six.rule=Host(`six.test`)' \
  "relais.http.services.six.loadbalancer.server.port=$P6"
run_c noport "$P5" 'traefik.http.routers.np.rule=Host(`np.test`)'
# the port from the one exposed port; several exposed ports: skipped
run_x exp1 "$PE" "--expose $PE" 'traefik.http.routers.exp.rule=Host(`exp.test`)'
run_x multi "$PM1" "--expose $PM1 --expose $PM2" 'traefik.http.routers.multi.rule=Host(`multi.test`)'
# a server url label (pointing at c1) is used as it is
run_c urlc "$PU" 'traefik.http.routers.u.rule=Host(`url.test`)' \
  "traefik.http.services.u.loadbalancer.server.url=http://127.0.0.1:$P1"
# (a url label next to a port label: skipped, as Traefik refuses it)
run_c urlport "$PUP" 'traefik.http.routers.up.rule=Host(`urlport.test`)' \
  "traefik.http.services.up.loadbalancer.server.url=http://127.0.0.1:$P1" \
  "traefik.http.services.up.loadbalancer.server.port=$PUP"
# (server fields other than port/scheme/url go to servers[0])
run_c stable "$PS" 'traefik.http.routers.stable.rule=Host(`stable.test`)' \
  "traefik.http.services.stable.loadbalancer.server.port=$PS" \
  traefik.http.services.stable.loadbalancer.server.weight=3
# for the constraints LabelRegex(team, ^(blue|green)$) && !Label(tier, db)
run_c k1 "$K1" team=blue tier=web 'traefik.http.routers.k1.rule=Host(`k1.test`)' \
  "traefik.http.services.k1.loadbalancer.server.port=$K1"
run_c k2 "$K2" team=green 'traefik.http.routers.k2.rule=Host(`k2.test`)' \
  "traefik.http.services.k2.loadbalancer.server.port=$K2"
run_c k3 "$K3" team=blue tier=db 'traefik.http.routers.k3.rule=Host(`k3.test`)' \
  "traefik.http.services.k3.loadbalancer.server.port=$K3"
run_c k4 "$K4" team=navyblue 'traefik.http.routers.k4.rule=Host(`k4.test`)' \
  "traefik.http.services.k4.loadbalancer.server.port=$K4"
for p in $P1 $P2 $P3 $P4 $P6 $PE $PM1 $PU $PS $K1 $K2 $K3 $K4; do wait_port "$p" 10; done

write_config "$T/relais.yaml" "$RP"
start_relais "$T/relais.yaml" "$RP"
write_config "$T/relais2.yaml" "$RP2" "    exposedByDefault: false
    labelPrefix: relais"
"$RELAIS" --config "$T/relais2.yaml" --plugin-dir "$PLUGIN_DIR" >>"$T/relais2.log" 2>&1 &
RELAIS2_PID=$!
PIDS+=("$RELAIS2_PID")
write_config "$T/relais3.yaml" "$RP3" \
  "    constraints: 'LabelRegex(\`team\`, \"^(blue|green)\$\") && !Label(\`tier\`, \`db\`)'"
"$RELAIS" --config "$T/relais3.yaml" --plugin-dir "$PLUGIN_DIR" >>"$T/relais3.log" 2>&1 &
RELAIS3_PID=$!
PIDS+=("$RELAIS3_PID")
wait_port "$RP2"
wait_port "$RP3"

ok "explicit router served by its container" until_eq 3 c1 body web.test
is "default rule Host(normalized name) served (scheme label)" bb_two "$(body bb-two)"
is "traefik.enable=false is not routed" 404 "$(code off.test)"
is "exposedByDefault: traefik.enable=true is routed" c4 "$(body en.test)"
is "a container without any port is not routed" 404 "$(code np.test)"
ok "a container without any port is warned about" \
  wait_log "WRN.*container noport: no exposed TCP port and no traefik\.http\.services\.<name>\.loadbalancer\.server\.port label; skipped" 1
is "single exposed port and no port label: served on that port" exp1 "$(body exp.test)"
is "several exposed ports and no port label: not routed" 404 "$(code multi.test)"
ok "several exposed ports: warned, naming the container and the ports" \
  wait_log "WRN.*container multi: several exposed TCP ports \(($PM1, $PM2|$PM2, $PM1)\) and no traefik\.http\.services\.<name>\.loadbalancer\.server\.port label; skipped" 1
is "a server url label is used as it is" c1 "$(body url.test)"
is "a server url label with a port label: not routed" 404 "$(code urlport.test)"
ok "... and warned about" \
  wait_log "WRN.*container urlport: service up: a server url label excludes the port and scheme labels; skipped" 1
is "stable container served" stable "$(body stable.test)"
for k in k1 k2 k3 k4; do
  is "no constraints: $k served" "$k" "$(body "$k.test")"
done
ok "exposedByDefault=false + traefik.enable=true routed (traefik.* read with labelPrefix relais)" until_eq 3 c4 body en.test "$RP2"
is "labelPrefix relais: relais.* labels routed" c6 "$(body six.test "$RP2")"
is "labelPrefix traefik: relais.* labels ignored" 404 "$(code six.test)"
is "exposedByDefault=false: unlabelled container not routed" 404 "$(code web.test "$RP2")"
is "exposedByDefault=false: default rule not routed" 404 "$(code bb-two "$RP2")"
kill "$RELAIS2_PID" 2>/dev/null; wait "$RELAIS2_PID" 2>/dev/null; RELAIS2_PID=""
ok "constraints: LabelRegex && !Label keep k1 (team=blue tier=web)" until_eq 3 k1 body k1.test "$RP3"
is "constraints: LabelRegex keeps k2 (team=green, no tier)" k2 "$(body k2.test "$RP3")"
is "constraints: !Label drops k3 (tier=db)" 404 "$(code k3.test "$RP3")"
is "constraints: LabelRegex drops k4 (team=navyblue)" 404 "$(code k4.test "$RP3")"
is "constraints: containers without the labels dropped" 404 "$(code web.test "$RP3")"
ok "constraints announced" grep -q "provider docker.*with constraints" "$T/relais3.log"
kill "$RELAIS3_PID" 2>/dev/null; wait "$RELAIS3_PID" 2>/dev/null; RELAIS3_PID=""

docker_cli stop -t 1 c1 >/dev/null
ok "stopped container → 404 within 1 s" until_eq 1 404 code web.test
docker_cli start c1 >/dev/null
ok "started again → served within 1 s" until_eq 1 c1 body web.test
docker_cli pause bb_two >/dev/null
ok "paused container → 404 within 1 s" until_eq 1 404 code bb-two
docker_cli unpause bb_two >/dev/null
ok "unpaused → served within 1 s" until_eq 1 bb_two body bb-two

# ---- a bounded load on the stable route while other containers change ---
# (at most 20000 requests and 30 s; stops when $T/stop appears)
python3 "$RELAIS_SRCDIR/tests/integration/loadgen.py" --port "$RP" --path / \
  --host stable.test --conns 2 --max 20000 --seconds 30 --timeout 5 \
  --stop "$T/stop" --ready "$T/ready" >"$T/loadgen.out" 2>"$T/loadgen.err" &
LG_PID=$!
PIDS+=("$LG_PID")
for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
sleep 0.2
run_c new1 "$PN" 'traefik.http.routers.new.rule=Host(`new.test`)' \
  "traefik.http.services.new.loadbalancer.server.port=$PN"
ok "load: a started container is routed within 1 s" until_eq 1 new1 body new.test
docker_cli pause new1 >/dev/null
ok "load: paused → 404 within 1 s" until_eq 1 404 code new.test
docker_cli unpause new1 >/dev/null
ok "load: unpaused → served within 1 s" until_eq 1 new1 body new.test
docker_cli stop -t 1 exp1 >/dev/null
ok "load: a stopped container → 404 within 1 s" until_eq 1 404 code exp.test
docker_cli start exp1 >/dev/null
ok "load: started again → served within 1 s" until_eq 1 exp1 body exp.test
# relabelled: the container made again with another rule
docker_cli rm -f new1 >/dev/null
run_c new1 "$PN" 'traefik.http.routers.new.rule=Host(`relabelled.test`)' \
  "traefik.http.services.new.loadbalancer.server.port=$PN"
ok "load: relabelled container → its new rule served within 1 s" until_eq 1 new1 body relabelled.test
is "load: ... and its old rule is gone" 404 "$(code new.test)"
docker_cli stop -t 1 new1 >/dev/null
ok "load: stopped → 404 within 1 s" until_eq 1 404 code relabelled.test
sleep 0.2
touch "$T/stop"
wait "$LG_PID"
is "load generator exited cleanly" 0 "$?"
LG_PID=""
sed 's/^/# /' "$T/loadgen.out"
head -5 "$T/loadgen.err"
lg() { awk -F= -v k="$1" '$1==k{print $2}' "$T/loadgen.out"; }
ok "load: requests were sent (>= 50)" test "$(lg requests)" -ge 50
is "load: zero failed requests on the stable route" 0 "$(lg errors)"
is "load: zero non-200 answers on the stable route" 0 "$(lg non200)"
is "the several-ports warning is logged once across all the rebuilds" 1 \
  "$(grep -c "container multi: several exposed TCP ports" "$T/relais.log")"
is "the no-port warning is logged once across all the rebuilds" 1 \
  "$(grep -c "container noport: no exposed TCP port" "$T/relais.log")"

# dockerd killed (containerd and the containers live on)
{ kill -KILL "$DOCKERD_PID"; wait "$DOCKERD_PID"; } 2>/dev/null
ok "dockerd going away is logged" wait_log "provider docker.*last configuration keeps serving" 3
sleep 1.5
is "the failure is logged once" 1 "$(grep -c "provider docker.*last configuration keeps serving" "$T/relais.log")"
is "last configuration keeps serving" c1 "$(body web.test)"
is "last configuration keeps serving (exposed port)" exp1 "$(body exp.test)"
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
  { docker_cli rm -f noport >/dev/null 2>&1; P5=$(port); run_c c5 "$P5" \
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
    useBindPortIP: perhaps
    network: [a, b]
    constraints: "Label(\`a\`, \`b\`) && Lable(\`c\`, \`d\`)"
    bogus: 1
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad docker options" 1 "$rc"
like "tcp endpoint named" 'providers.docker.endpoint: .*not supported yet' "$out"
like "bad defaultRule named" 'providers.docker.defaultRule: ' "$out"
like "bad exposedByDefault named" 'providers.docker.exposedByDefault' "$out"
like "bad useBindPortIP named" 'providers.docker.useBindPortIP' "$out"
like "non-string network named" 'providers.docker.network' "$out"
like "bad constraints named with the column" \
  'providers\.docker\.constraints: column 20: unknown function Lable' "$out"
like "unknown option named" 'providers.docker.bogus: unknown option' "$out"
for c in 'Label(`a`, `b`' 'LabelRegex(`a`, `(`)' 'Label(`a`, `b`) ||' '!(Label(`a`, `b`)'; do
  cat >"$T/bad2.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  docker:
    endpoint: "unix://$T/none.sock"
    constraints: '$c'
EOF
  out=$("$RELAIS" --config "$T/bad2.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
  is "--check refuses the constraints $c" 1 "$rc"
  like "... naming providers.docker.constraints and a column" \
    'providers\.docker\.constraints: column [0-9]+: ' "$out"
done
cat >"$T/good.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  docker:
    endpoint: "unix://$T/none.sock"
    constraints: 'Label(\`a\`, "b") || !LabelRegex(\`c\`, \`^d+\$\`)'
    network: front
    useBindPortIP: true
EOF
out=$("$RELAIS" --config "$T/good.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check accepts constraints, network and useBindPortIP" 0 "$rc"
t_done
