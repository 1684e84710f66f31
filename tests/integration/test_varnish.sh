#!/bin/bash
# test_varnish.sh — exact bytes on the wire, with varnishtest.
#
# Every tests/integration/vtc/*.vtc is one TAP line.  In a vtc, varnishtest
# servers (s1, ...) are the backends and clients talk to relais, which the
# vtc starts itself:
#
#   server s1 { rxreq ... } -start
#   shell {${relais_conf} ${tmpdir} ${rport} http://${s1_addr}:${s1_port}}
#   process p1 {exec ${relais_run} ${tmpdir}} -start
#   shell {${relais_wait} ${rport}}
#   client c1 -connect "127.0.0.1 ${rport}" { txreq ... } -run
#
# Macros passed with -D:
#   relais_conf DIR PORT URL [ROUTER-YAML-LINES [EP-YAML-LINES]]  writes
#                 DIR/relais.yaml (entry point on 127.0.0.1:PORT) and
#                 DIR/dynamic.yaml (one router PathPrefix(`/`) to one service
#                 with the server URL); EP-YAML-LINES go under the entry
#                 point, unindented, e.g. "http2: {maxResetsPerSecond: 5}"
#   relais_run DIR  execs relais on DIR/relais.yaml (its log is shown on failure)
#   relais_wait PORT  waits (5 s) until relais accepts connections
#   rport         a free port for relais' entry point
#   hostname      what relais puts in X-Forwarded-Server (gethostname)
#   dead_port     a loopback port nothing listens on
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
VTC_DIR=${RELAIS_VTC_DIR:-$HERE/vtc}  # override to run other vtc files
VARNISHTEST=${VARNISHTEST:-$(command -v varnishtest || true)}

if [ -z "$VARNISHTEST" ]; then
  echo "Bail out! varnishtest not found (CI installs it: see tests/run.sh)"
  exit 1
fi
if [ ! -x "$RELAIS" ]; then
  echo "Bail out! $RELAIS not built"
  exit 1
fi

cat >"$T/relais_conf.sh" <<'EOF'
#!/bin/bash
# relais_conf DIR PORT URL [EXTRA [EP]]: the two configuration files of a
# vtc; EXTRA goes after the service (dynamic), EP under the entry point.
set -eu
dir=$1 port=$2 url=$3 extra=${4:-} ep=${5:-}
cat >"$dir/dynamic.yaml" <<EOF2
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: s1
  services:
    s1:
      loadBalancer:
        servers:
          - url: "$url"
$extra
EOF2
cat >"$dir/relais.yaml" <<EOF2
entryPoints:
  web:
    address: "127.0.0.1:$port"
$(printf '%s\n' "$ep" | sed 's/^/    /')
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$dir/dynamic.yaml"
log:
  level: DEBUG
workers: 1
EOF2
EOF
cat >"$T/relais_wait.sh" <<'EOF'
#!/bin/bash
# relais_wait PORT: waits until something accepts on 127.0.0.1:PORT.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exit 0
  sleep 0.05
done
echo "relais does not listen on $1"
exit 1
EOF
cat >"$T/relais_run.sh" <<EOF
#!/bin/bash
# relais_run DIR: runs relais on DIR/relais.yaml, logging to \$RELAIS_VTC_LOG.
exec "$RELAIS" --config "\$1/relais.yaml" --plugin-dir "${PLUGIN_DIR:-$RELAIS_PLUGIN_DIR}" \\
  >>"\${RELAIS_VTC_LOG:-\$1/relais.log}" 2>&1
EOF
chmod +x "$T/relais_conf.sh" "$T/relais_wait.sh" "$T/relais_run.sh"

# vtc_port [NOT]: a free loopback port below the ephemeral range (a port
# an outgoing connection holds cannot be bound either), other than NOT.
vtc_port() {
  local lo p
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 12000 ] 2>/dev/null || { free_port; return; }
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    [ "$p" = "${1:-}" ] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

n_vtc=0
for vtc in "$VTC_DIR"/*.vtc; do
  [ -e "$vtc" ] || continue
  n_vtc=$((n_vtc + 1))
  name=$(basename "$vtc" .vtc)
  rport=$(vtc_port)
  dead=$(vtc_port "$rport")
  out=$T/$name.out
  # -v: the whole log (shown on failure); -t: the whole test's time limit
  RELAIS_VTC_LOG=$T/$name.relais.log "$VARNISHTEST" -v -t 30 \
    -D relais_conf="$T/relais_conf.sh" \
    -D relais_wait="$T/relais_wait.sh" \
    -D relais_run="$T/relais_run.sh" \
    -D rport="$rport" -D dead_port="$dead" \
    -D hostname="$(hostname)" \
    "$vtc" >"$out" 2>&1
  rc=$?
  TAP_N=$((TAP_N + 1))
  title=$(sed -n 's/^varnishtest *"\(.*\)"/\1/p' "$vtc" | head -1 | tr '#' '+')
  if [ $rc -eq 0 ]; then
    echo "ok $TAP_N - $name: $title"
  else
    echo "not ok $TAP_N - $name: $title (varnishtest exit $rc)"
    TAP_FAILED=$((TAP_FAILED + 1))
    grep -v '^$' "$out" | tail -150 | sed 's/^/#   /'
    if [ -s "$T/$name.relais.log" ]; then
      echo "#   relais log:"
      tail -40 "$T/$name.relais.log" | sed 's/^/#     /'
    fi
  fi
done
[ "$n_vtc" -gt 0 ] || ok "vtc files found in $VTC_DIR" false
t_done
