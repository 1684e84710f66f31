#!/usr/bin/env bash
# Two Docker hosts under one relais: two private Docker engines at once
# (tests/servers/dockerd.sh, named engines "east" and "west": own data-root,
# exec-root, pidfile, socket, containerd), followed by two docker providers
# of relais, providers.east {type: docker} (labels traefik.*) and
# providers.west {type: docker, labelPrefix: west}.  Busybox httpd
# containers on the host network, listening on 127.0.0.1 only, the image
# built locally on each engine.  Checked: containers of each engine become
# routes, namespaced name@east / name@west (one router name on both engines
# is two routers; a reference without @ stays in its provider), each
# provider reads its own label prefix on its own engine only; a router of
# east uses a service of west through its service label (wsvc@west); a
# container started / stopped on each engine is followed within 1 s; a
# bounded load on a route of east while west's containers start, stop and
# go: zero failed requests; the west engine killed → its routes keep
# serving the last configuration, the failure is logged once under
# "provider west" (and not under east), east still follows; west restarted
# → its updates resume ("reachable again" under provider west); relais
# --check names the bad options of a named instance providers.west.<key>.
. "$(dirname "$0")/lib.sh"
. "$RELAIS_SRCDIR/tests/servers/dockerd.sh"
. "$RELAIS_SRCDIR/tests/servers/busybox-image.sh"

if ! command -v dockerd >/dev/null || ! command -v curl >/dev/null; then
  echo "Bail out! dockerd or curl not installed (apt-get install docker.io busybox-static curl)"
  exit 1
fi
[ -f "$RELAIS_PLUGIN_DIR/docker.so" ] || { echo "Bail out! docker.so not built"; exit 1; }
LG_PID=""
trap '[ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null; dockerd_stop_all >/dev/null 2>&1; t_cleanup' EXIT

plugin_dir_own

# ---- two engines, the image built on each (nothing pulled) -------------
dockerd_start_named east "$T/east" >/dev/null || { echo "Bail out! dockerd east does not start"; exit 1; }
dockerd_start_named west "$T/west" >/dev/null || { echo "Bail out! dockerd west does not start"; exit 1; }
ES=$(dockerd_sock east)
WS=$(dockerd_sock west)
for e in east west; do
  DOCKER_HOST="unix://$(dockerd_sock "$e")" busybox_image_build >/dev/null ||
    { echo "Bail out! busybox image not built on $e"; exit 1; }
done

# run_on ENGINE NAME PORT [LABEL...]: a busybox httpd container on ENGINE,
# host network, listening on 127.0.0.1:PORT, answering "NAME" on /
run_on() {
  local eng=$1 name=$2 port=$3 args=() l; shift 3
  for l in "$@"; do args+=(--label "$l"); done
  docker_on "$eng" run -d --network host --init --name "$name" "${args[@]}" "$BUSYBOX_IMAGE" \
    sh -c "mkdir -p /w && echo $name >/w/index.html && exec busybox httpd -f -p 127.0.0.1:$port -h /w" \
    >/dev/null
}
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
RP=$(port)
PES=$(port); PEA=$(port); PCR=$(port); PEB=$(port); PEN=$(port); PEK=$(port); PEW=$(port)
PWA=$(port); PWS=$(port); PWT=$(port); PWN=$(port); PWL1=$(port); PWL2=$(port); PWR=$(port)
body() { curl -s --max-time 2 -H "Host: $1" "http://127.0.0.1:$RP/"; }
code() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
# until_eq SECONDS EXPECTED CMD...: waits until CMD prints EXPECTED
until_eq() {
  local n=$(( $1 * 20 )) want=$2 i; shift 2
  for ((i = 0; i < n; i++)); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

# east (traefik.* labels)
run_on east estable "$PES" 'traefik.http.routers.stable.rule=Host(`stable.test`)' \
  "traefik.http.services.stable.loadbalancer.server.port=$PES"
run_on east eapp "$PEA" 'traefik.http.routers.app.rule=Host(`app-east.test`)' \
  "traefik.http.services.app.loadbalancer.server.port=$PEA"
# a router of east on a service of west
run_on east ecross "$PCR" 'traefik.http.routers.cross.rule=Host(`cross.test`)' \
  traefik.http.routers.cross.service=wsvc@west \
  "traefik.http.services.ecross.loadbalancer.server.port=$PCR"
# a reference without @ stays in east: wapp is west's only → disabled
run_on east ebad "$PEB" 'traefik.http.routers.bad.rule=Host(`bad.test`)' \
  traefik.http.routers.bad.service=wapp \
  "traefik.http.services.ebad.loadbalancer.server.port=$PEB"
# west (labelPrefix west: west.* labels)
run_on west wapp "$PWA" 'west.http.routers.app.rule=Host(`app-west.test`)' \
  "west.http.services.wapp.loadbalancer.server.port=$PWA"
run_on west wsvc "$PWS" "west.http.services.wsvc.loadbalancer.server.port=$PWS" \
  'west.http.routers.wsvc.rule=Host(`wsvc.test`)'
# traefik.* labels on west: not read there
run_on west wtraefik "$PWT" 'traefik.http.routers.wt.rule=Host(`wt.test`)' \
  "traefik.http.services.wt.loadbalancer.server.port=$PWT"
# west.* labels on east: not read there
run_on east ewest "$PEW" 'west.http.routers.ew.rule=Host(`ew.test`)' \
  "west.http.services.ew.loadbalancer.server.port=$PEW"
for p in $PES $PEA $PCR $PEB $PEW $PWA $PWS $PWT; do wait_port "$p" 10; done

cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  east:
    type: docker
    endpoint: "unix://$ES"
  west:
    type: docker
    endpoint: "unix://$WS"
    labelPrefix: west
log:
  level: DEBUG
workers: 2
EOF
start_relais "$T/relais.yaml" "$RP"

ok "east: its container routed (stable@east)" until_eq 5 estable body stable.test
ok "west: its container routed (west.* labels)" until_eq 5 wsvc body wsvc.test
is "router app on east: app@east" eapp "$(body app-east.test)"
is "router app on west: app@west, a router of its own" wapp "$(body app-west.test)"
is "router cross@east uses service wsvc@west" wsvc "$(body cross.test)"
is "a service reference without @ stays in its provider (bad@east → wapp@east)" 404 \
  "$(code bad.test)"
ok "... and the router is disabled, logged as bad@east naming wapp@east" \
  wait_log "bad@east disabled: .*wapp@east" 1
is "west reads west.* only: its traefik.* labels are not routed" 404 "$(code wt.test)"
is "east reads traefik.* only: west.* labels on east are not routed" 404 "$(code ew.test)"
is "no object is defined twice" 0 "$(grep -c 'defined more than once' "$T/relais.log")"
ok "each engine watched by its own provider: east" \
  grep -q "provider east.*watching unix://$ES" "$T/relais.log"
ok "each engine watched by its own provider: west" \
  grep -q "provider west.*watching unix://$WS" "$T/relais.log"

# ---- a container started / stopped on each is followed within 1 s ------
run_on east enew "$PEN" 'traefik.http.routers.enew.rule=Host(`enew.test`)' \
  "traefik.http.services.enew.loadbalancer.server.port=$PEN"
ok "east: a started container is routed within 1 s" until_eq 1 enew body enew.test
docker_on east stop -t 1 enew >/dev/null
ok "east: a stopped container → 404 within 1 s" until_eq 1 404 code enew.test
run_on west wnew "$PWN" 'west.http.routers.wnew.rule=Host(`wnew.test`)' \
  "west.http.services.wnew.loadbalancer.server.port=$PWN"
ok "west: a started container is routed within 1 s" until_eq 1 wnew body wnew.test
docker_on west stop -t 1 wnew >/dev/null
ok "west: a stopped container → 404 within 1 s" until_eq 1 404 code wnew.test
docker_on west stop -t 1 wsvc >/dev/null
ok "west: cross@east follows wsvc@west going (404 within 1 s)" until_eq 1 404 code cross.test
is "east: its own routes unaffected" estable "$(body stable.test)"
docker_on west start wsvc >/dev/null
ok "west: cross@east follows wsvc@west back within 1 s" until_eq 1 wsvc body cross.test

# ---- a bounded load on east while west's containers change -------------
# (at most 20000 requests and 30 s; stops when $T/stop appears)
python3 "$RELAIS_SRCDIR/tests/integration/loadgen.py" --port "$RP" --path / \
  --host stable.test --conns 2 --max 20000 --seconds 30 --timeout 5 \
  --stop "$T/stop" --ready "$T/ready" >"$T/loadgen.out" 2>"$T/loadgen.err" &
LG_PID=$!
PIDS+=("$LG_PID")
for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
sleep 0.2
run_on west wl1 "$PWL1" 'west.http.routers.wl1.rule=Host(`wl1.test`)' \
  "west.http.services.wl1.loadbalancer.server.port=$PWL1"
ok "load: west: a started container is routed within 1 s" until_eq 1 wl1 body wl1.test
run_on west wl2 "$PWL2" 'west.http.routers.wl2.rule=Host(`wl2.test`)' \
  "west.http.services.wl2.loadbalancer.server.port=$PWL2"
ok "load: west: a second one within 1 s" until_eq 1 wl2 body wl2.test
docker_on west stop -t 1 wl1 >/dev/null
ok "load: west: stopped → 404 within 1 s" until_eq 1 404 code wl1.test
docker_on west rm -f wl2 >/dev/null
ok "load: west: removed → 404 within 1 s" until_eq 1 404 code wl2.test
docker_on west start wl1 >/dev/null
ok "load: west: started again → served within 1 s" until_eq 1 wl1 body wl1.test
docker_on west stop -t 1 wsvc >/dev/null
ok "load: west: cross@east loses wsvc@west within 1 s" until_eq 1 404 code cross.test
docker_on west start wsvc >/dev/null
ok "load: west: cross@east gets it back within 1 s" until_eq 1 wsvc body cross.test
sleep 0.2
touch "$T/stop"
wait "$LG_PID"
is "load generator exited cleanly" 0 "$?"
LG_PID=""
sed 's/^/# /' "$T/loadgen.out"
head -5 "$T/loadgen.err"
lg() { awk -F= -v k="$1" '$1==k{print $2}' "$T/loadgen.out"; }
ok "load: requests were sent (>= 50)" test "$(lg requests)" -ge 50
is "load: zero failed requests on the east route" 0 "$(lg errors)"
is "load: zero non-200 answers on the east route" 0 "$(lg non200)"

# ---- the west engine killed: last configuration, east still follows ----
{ kill -KILL "$(dockerd_pid west)"; wait "$(dockerd_pid west)"; } 2>/dev/null
ok "west going away is logged under provider west" \
  wait_log "provider west.*unix://$WS: .*last configuration keeps serving" 3
ok "east: a container started while west is down is routed within 1 s" \
  run_on east ekill "$PEK" 'traefik.http.routers.ekill.rule=Host(`ekill.test`)' \
  "traefik.http.services.ekill.loadbalancer.server.port=$PEK"
ok "... (routed)" until_eq 1 ekill body ekill.test
sleep 1.2
is "the failure is logged once" 1 \
  "$(grep -c "last configuration keeps serving" "$T/relais.log")"
is "... and not under provider east" 0 \
  "$(grep -c "provider east.*last configuration keeps serving" "$T/relais.log")"
is "west: last configuration keeps serving (wsvc)" wsvc "$(body wsvc.test)"
is "west: last configuration keeps serving (app@west)" wapp "$(body app-west.test)"
is "west: cross@east still uses wsvc@west" wsvc "$(body cross.test)"
docker_on east stop -t 1 ekill >/dev/null
ok "east: a stop while west is down → 404 within 1 s" until_eq 1 404 code ekill.test
is "east: its stable route unaffected" estable "$(body stable.test)"

# ---- west restarted: updates resume ------------------------------------
# (same data dir; the restart stops west's old containers)
dockerd_restart_named west >/dev/null || dockerd_restart_named west >/dev/null ||
  echo "# dockerd west did not restart"
WS2=$(dockerd_sock west)
is "west: the same socket after the restart" "$WS" "$WS2"
run_on west wrestart "$PWR" 'west.http.routers.wr.rule=Host(`wr.test`)' \
  "west.http.services.wr.loadbalancer.server.port=$PWR"
ok "west: after the restart a new container is routed" until_eq 8 wrestart body wr.test
ok "west: reachable again is logged under provider west" \
  wait_log "provider west.*unix://$WS: reachable again" 1
is "west: its old containers (stopped by the restart) are gone" 404 "$(code wsvc.test)"
docker_on west start wsvc >/dev/null
ok "west: a container started again after the restart → within 1 s" until_eq 1 wsvc body cross.test
docker_on west stop -t 1 wrestart >/dev/null
ok "west: after the restart a stop is followed within 1 s" until_eq 1 404 code wr.test
docker_on east start enew >/dev/null
ok "east: still followed after west's restart (within 1 s)" until_eq 1 enew body enew.test
kill -TERM "$RELAIS_PID" 2>/dev/null; wait "$RELAIS_PID" 2>/dev/null

# ---- --check names the options of a named instance ----------------------
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  east:
    type: docker
    endpoint: "unix://$T/none-east.sock"
  west:
    type: docker
    endpoint: "tcp://127.0.0.1:2375"
    labelPrefix: "a.b"
    exposedByDefault: maybe
    constraints: "Lable(\`c\`, \`d\`)"
    bogus: 1
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad options of west" 1 "$rc"
like "tcp endpoint named providers.west.endpoint" 'providers\.west\.endpoint: .*not supported yet' "$out"
like "bad labelPrefix named providers.west.labelPrefix" 'providers\.west\.labelPrefix: ' "$out"
like "bad exposedByDefault named providers.west.exposedByDefault" 'providers\.west\.exposedByDefault' "$out"
like "bad constraints named providers.west.constraints" \
  'providers\.west\.constraints: column 1: unknown function Lable' "$out"
like "unknown option named providers.west.bogus" 'providers\.west\.bogus: unknown option' "$out"
is "the type key is not an unknown option" 0 "$(printf '%s\n' "$out" | grep -c 'type: unknown option')"
is "nothing blamed on east or docker" 0 \
  "$(printf '%s\n' "$out" | grep -Ec 'providers\.(east|docker)\.')"
cat >"$T/badtype.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  west:
    type: dockr
    endpoint: "unix://$T/none.sock"
EOF
out=$("$RELAIS" --config "$T/badtype.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses an unknown type" 1 "$rc"
like "... naming providers.west.type" 'providers\.west\.type: no loaded plugin provides the "dockr" provider' "$out"
cat >"$T/good.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  east:
    type: docker
    endpoint: "unix://$T/none-east.sock"
  west:
    type: docker
    endpoint: "unix://$T/none-west.sock"
    labelPrefix: west
    exposedByDefault: false
EOF
out=$("$RELAIS" --config "$T/good.yaml" --plugin-dir "$PLUGIN_DIR" --check 2>&1); rc=$?
is "--check accepts two docker instances" 0 "$rc"
t_done
