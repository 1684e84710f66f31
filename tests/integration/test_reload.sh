#!/bin/bash
# test_reload.sh — the hot-reload guarantee: while a bounded load runs, the
# dynamic file is rewritten 50 times (routers, services, servers and
# middlewares added and removed); no request fails, and every request is
# answered by a server that the configuration allowed at that moment.
#
# Four whoami backends w0..w3 run all along; version v of the dynamic file
# (v = 0..50) sends
#   Host main.test (router "main", PathPrefix(`/`))   to a subset S_v,
#   Host alt.test  (router alt_a or alt_b, renamed every version, through
#                   service altpool_0/1/2)            to a subset A_v,
# and both routers carry the middleware "ver" (test plugin testHeader) that
# sets X-Config-Version: v on the response; alt routers also carry "altmark"
# (X-Route: alt).  Routers extra_K and once_v come and go.  Each response
# thus names its version and its server (X-Whoami-Name), and loadgen.py
# checks name ∈ S_v (or A_v) for every single one.
. "$(dirname "$0")/lib.sh"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || { echo "Bail out! $PYTHON not found (CI installs it: see tests/run.sh)"; exit 1; }
LOADGEN="$RELAIS_SRCDIR/tests/integration/loadgen.py"
NVERS=50                      # rewrites after version 0

for n in 0 1 2 3; do
  start_whoami "w$n" || { echo "Bail out! whoami w$n did not start"; exit 1; }
  WPORT[$n]=$WHOAMI_PORT
done

# Plugin directory: the staged in-tree plugins plus the test middleware.
mkdir -p "$T/plugins" "$T/dyn"
for so in "$RELAIS_PLUGIN_DIR"/*.so; do ln -s "$so" "$T/plugins/"; done
ln -s "$RELAIS_TEST_PLUGIN_DIR/tp_header.so" "$T/plugins/"
PLUGIN_DIR=$T/plugins

# names MASK: the comma-separated names of the servers in the 4-bit MASK.
names() {
  local n out=""
  for n in 0 1 2 3; do
    (( $1 >> n & 1 )) && out+="${out:+,}w$n"
  done
  echo "$out"
}

# servers MASK: the YAML server list of MASK.
servers() {
  local n
  for n in 0 1 2 3; do
    (( $1 >> n & 1 )) && printf '          - url: "http://127.0.0.1:%s"\n' "${WPORT[$n]}"
  done
}

# version V: prints version V of the dynamic file; appends its allowed
# servers to $T/allowed.
version() {
  local v=$1 k
  local smask=$(( (v * 5 + 3) % 15 + 1 ))       # never 0: S_v is not empty
  local amask=$(( (v * 11 + 7) % 15 + 1 ))
  local alt=alt_a apool=altpool_$(( v % 3 ))
  (( v % 2 )) && alt=alt_b
  echo "$v main.test $(names $smask)" >>"$T/allowed"
  echo "$v alt.test $(names $amask)" >>"$T/allowed"
  cat <<EOF
# version $v
http:
  routers:
    main:
      rule: "PathPrefix(\`/\`)"
      priority: 1
      service: pool
      middlewares: [ver]
    $alt:
      rule: "Host(\`alt.test\`)"
      priority: 100
      service: $apool
      middlewares: [ver, altmark]
    once_$v:
      rule: "Host(\`once$v.test\`)"
      service: once_$v
EOF
  for ((k = 0; k < (v % 7) * 3; k++)); do
    printf '    extra_%d:\n      rule: "Host(`extra%d.test`)"\n      service: pool\n' "$k" "$k"
  done
  cat <<EOF
  middlewares:
    ver:
      testHeader:
        name: X-Config-Version
        value: "$v"
    altmark:
      testHeader:
        name: X-Route
        value: alt
  services:
    pool:
      loadBalancer:
        servers:
$(servers $smask)
    $apool:
      loadBalancer:
        servers:
$(servers $amask)
    once_$v:
      loadBalancer:
        servers:
$(servers $(( 1 << (v % 4) )))
EOF
}

# publish V: writes version V atomically (temporary file + rename).
publish() {
  version "$1" >"$T/dyn/dynamic.yaml.tmp" && mv -f "$T/dyn/dynamic.yaml.tmp" "$T/dyn/dynamic.yaml"
}

# applied: how many "configuration N applied" lines the log holds.
applied() {
  grep -Ec 'configuration [0-9]+ applied' "$T/relais.log" 2>/dev/null || true
}

: >"$T/allowed"
publish 0
PORT=$(free_port)
static_config "$T/relais.yaml" "$PORT" "$T/dyn/dynamic.yaml"
start_relais "$T/relais.yaml" "$PORT" || { echo "Bail out! relais did not start"; cat "$T/relais.log" | sed 's/^/# /'; exit 1; }

# Wait until version 0 serves (the first snapshot is empty).
for _ in $(seq 1 100); do
  v0=$(curl -s -o /dev/null -D - -H 'Host: main.test' "http://127.0.0.1:$PORT/bench" 2>/dev/null |
       tr -d '\r' | awk -F': ' 'tolower($1)=="x-config-version"{print $2}')
  [ "$v0" = 0 ] && break
  sleep 0.1
done
is "version 0 serves before the load starts" "0" "${v0:-}"

# The load: bounded by count and time; stops when $T/stop appears.
"$PYTHON" "$LOADGEN" --port "$PORT" --path /bench --host main.test --host alt.test \
  --conns 4 --max 300000 --seconds 45 --stop "$T/stop" --ready "$T/ready" \
  --allowed "$T/allowed.final" --expect alt.test:X-Route:alt \
  --records "$T/records" >"$T/loadgen.out" 2>"$T/loadgen.err" &
LG_PID=$!
PIDS+=($LG_PID)
for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
sleep 0.3

# 50 rewrites, each one ~100 ms after the previous one was applied (so that
# the provider's debounce never merges two of them).
missed=0
for ((v = 1; v <= NVERS; v++)); do
  before=$(applied)
  publish "$v"
  for ((i = 0; i < 100; i++)); do
    [ "$(applied)" -gt "$before" ] && break
    sleep 0.05
  done
  if [ "$(applied)" -le "$before" ]; then
    missed=$((missed + 1))
    echo "# version $v: not applied within 5 s"
    [ "$missed" -ge 3 ] && break        # relais is stuck: do not wait more
  fi
  sleep 0.1
done
cp "$T/allowed" "$T/allowed.final"
sleep 0.5
touch "$T/stop"
wait "$LG_PID"
lg_rc=$?

sed 's/^/# /' "$T/loadgen.out"
get() { awk -F= -v k="$1" '$1==k{print $2}' "$T/loadgen.out"; }
is "load generator exited cleanly" 0 "$lg_rc"
ok "the load ran (some requests)" test "$(get requests)" -gt 100 2>/dev/null
is "no connection errors" 0 "$(get errors)"
is "no non-200 answers" 0 "$(get non200)"
is "every answer from a server its configuration allowed" 0 "$(get violations)"
ok "at least 40 distinct versions served under load ($(get versions))" \
  test "$(get versions)" -ge 40 2>/dev/null
is "every rewrite applied" 0 "$missed"
n=$(applied)
ok "the log shows >= 50 applied configurations ($n)" test "$n" -ge 50
ok "relais is still running" kill -0 "$RELAIS_PID"
# A graceful stop frees every old snapshot: it must exit 0.
kill -TERM "$RELAIS_PID" 2>/dev/null
for _ in $(seq 1 150); do kill -0 "$RELAIS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$RELAIS_PID" 2>/dev/null; then rl_rc=timeout; else wait "$RELAIS_PID"; rl_rc=$?; fi
is "relais stops cleanly on SIGTERM" 0 "$rl_rc"
if [ "$TAP_FAILED" -ne 0 ]; then
  head -25 "$T/loadgen.err"
  grep -Ev 'configuration [0-9]+ applied' "$T/relais.log" | tail -20 | sed 's/^/# relais: /'
fi
t_done
