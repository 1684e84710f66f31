# cluster_lib.sh — shared helpers of the cluster-mode tests (test_cluster.sh,
# test_cluster_acme.sh): a real three-member etcd cluster on loopback and
# relais nodes (controllers and proxies) on one prefix.  Sourced after
# lib.sh (bash); the conventions are lib.sh's (TAP, $T, PIDS, free_port).
#
# The test sets, before calling node_cfg:
#   CL_PREFIX   the cluster prefix (cluster.prefix)
#   CL_TTL      cluster.leaseTTL (e.g. 2s)
#   CL_DYN      the dynamic file the controllers' file provider watches
#   PORT[NAME]  the "web" entry point's port of each node
#   WS[NAME]    optional: a "websecure" entry point's port (also the port
#               start_node waits for when set)
# and may define cl_node_extra NAME ROLE, printing more top-level YAML for
# a node's static file (certificatesResolvers, ...).
#
# Teardown (EXIT trap): the functions listed in CL_TEARDOWN (e.g.
# pebble_stop), then the etcd cluster, then lib.sh's t_cleanup.

. "$RELAIS_SRCDIR/tests/servers/etcd.sh"

declare -A PORT WS PID
CL_TEARDOWN=()

# cl_teardown: the EXIT trap (see above).
cl_teardown() {
  local f
  for f in "${CL_TEARDOWN[@]:-}"; do [ -n "$f" ] && "$f" >/dev/null 2>&1; done
  etcd_stop >/dev/null 2>&1
  t_cleanup
}
trap cl_teardown EXIT

# cl_need TOOL...: bails out unless each tool is installed and the file
# provider plugin is built.
cl_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "Bail out! $t not installed (CI installs it: see tests/run.sh)"; exit 1; }
  done
  [ -f "$RELAIS_PLUGIN_DIR/file.so" ] || { echo "Bail out! file.so not built"; exit 1; }
}

# cl_etcd_start: a three-member etcd cluster under $T/etcd (bails out when
# it does not start); exports ETCDCTL_ENDPOINTS for etcdctl.
cl_etcd_start() {
  etcd_cluster_start "$T/etcd" 3 >"$T/etcd-start.log" 2>&1 \
    || { echo "Bail out! etcd cluster does not start"; cat "$T/etcd-start.log"; exit 1; }
  export ETCDCTL_ENDPOINTS=$ETCD_ENDPOINTS
}

# ek KEY: the value of an etcd key (empty when absent).
ek() { etcdctl get --print-value-only "$1" 2>/dev/null; }

# node_cfg NAME ROLE: writes $T/NAME.yaml, a node of role ROLE (controller:
# the file provider on $CL_DYN, watched) on $CL_PREFIX with leaseTTL
# $CL_TTL, every member of the etcd cluster as endpoint (1 s per attempt).
node_cfg() {
  local prov="" ws=""
  [ "$2" = controller ] && prov="  file:
    filename: \"$CL_DYN\"
    watch: true"
  [ -n "${WS[$1]:-}" ] && ws="  websecure:
    address: \"127.0.0.1:${WS[$1]}\""
  cat >"$T/$1.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:${PORT[$1]}"
$ws
providers:
  providersThrottleDuration: 0s
$prov
$(declare -F cl_node_extra >/dev/null && cl_node_extra "$1" "$2")
log:
  level: DEBUG
workers: 2
cluster:
  role: $2
  nodeName: $1
  prefix: $CL_PREFIX
  leaseTTL: $CL_TTL
  etcd:
    timeout: 1s
    endpoints:
$(echo "$ETCD_ENDPOINTS" | tr ',' '\n' | sed 's/^/      - "/; s/$/"/')
EOF
}

# start_node NAME: starts relais on $T/NAME.yaml (log $T/NAME.log, plugins
# of $PLUGIN_DIR); sets PID[NAME]; waits for its websecure port when it has
# one, else for its web port.
start_node() {
  "$RELAIS" --config "$T/$1.yaml" --plugin-dir "$PLUGIN_DIR" >>"$T/$1.log" 2>&1 &
  PID[$1]=$!
  PIDS+=($!)
  wait_port "${WS[$1]:-${PORT[$1]}}"
}

# stop_node NAME: SIGTERM to node NAME; one TAP check that it stopped with
# status 0.
stop_node() {
  kill -TERM "${PID[$1]}"; wait "${PID[$1]}"
  is "$1 stopped with status 0" 0 $?
}

# no_sanitizer_report: one TAP check that no node's log (every node
# start_node started) holds a sanitizer report.
no_sanitizer_report() {
  local n logs=()
  for n in "${!PID[@]}"; do logs+=("$T/$n.log"); done
  is "no sanitizer report in any node's log" "" \
    "$(cat "${logs[@]}" 2>/dev/null | grep -E 'Sanitizer|runtime error' | head -3)"
}
