#!/usr/bin/env bash
# bench/tls.sh — TLS termination: relais against HAProxy and nginx.
# Not a test: never run by make check.
#
# Starts one backend (nginx, 1 worker, plain HTTP on 127.0.0.1:18080:
# /small = 12 bytes, /16k = 16 KiB) and three TLS-terminating proxies in
# front of it, each with one thread/worker and the same certificate (made
# here with openssl: EC P-256 by default, RSA-2048 with --key rsa):
#
#   relais   127.0.0.1:18443  router with tls: {}, tls.certificates
#   haproxy  127.0.0.1:18444  bind ... ssl crt, nbthread 1
#   nginx    127.0.0.1:18445  listen ... ssl, worker_processes 1
#
# all keeping their connections to the backend alive. Each is loaded with
# wrk over https in two modes, rounds interleaved (relais haproxy nginx,
# relais haproxy nginx, ...) so that machine drift hits every target alike:
#
#   keepalive  many requests per TLS connection: the record layer
#   close      -H 'Connection: close': one full TLS 1.3 handshake per
#              request (wrk never resumes sessions): handshakes/s
#
# Prints per target and mode the median req/s, its spread over the rounds
# ((max - min) / median, in percent), p50/p99 latency (wrk
# measures from the request's first byte, so the handshake is not in it),
# the ratio against HAProxy, the proxy's CPU time per request (user+sys of
# its processes from /proc / requests: the figure a busy machine disturbs
# least) and the errors wrk reported, summed over the rounds.
#
# Usage:
#   bench/tls.sh [--rounds N] [--seconds S] [--conns C] [--path /small|/16k]
#                [--key ec|rsa] [--no-pin]
#   (defaults: 3 rounds of 5 s, 64 connections, /small, ec)
#
# By default the proxies are pinned to CPU 0 and the backend and wrk to the
# last CPU (taskset); --no-pin turns that off.
#
# Environment (as bench/run.sh):
#   BUILDDIR           build tree holding src/relais and plugins-staged/
#                      (default: $PWD when it holds src/relais, else
#                      /tmp/build-bench; build it with CFLAGS="-O2 -g")
#   RELAIS             relais binary (default $BUILDDIR/src/relais)
#   RELAIS_PLUGIN_DIR  plugin directory (default $BUILDDIR/plugins-staged)
#
# Needs: nginx (with the ssl module: nginx-light has it), haproxy (built
# with OpenSSL), wrk, openssl, curl, taskset. Only 127.0.0.1 is used; the
# ports 18080 and 18443-18445 must be free. Every process started here is
# stopped on exit and its files removed.
set -euo pipefail

ROUNDS=3; SECS=5; CONNS=64; URLPATH=/small; KEY=ec; PIN=1
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2;;
    --seconds) SECS="$2"; shift 2;;
    --conns) CONNS="$2"; shift 2;;
    --path) URLPATH="$2"; shift 2;;
    --key) KEY="$2"; shift 2;;
    --no-pin) PIN=0; shift;;
    -h|--help) usage; exit 0;;
    *) echo "tls.sh: unknown argument $1 (--help)" >&2; exit 2;;
  esac
done
for v in "$ROUNDS" "$SECS" "$CONNS"; do
  case "$v" in ''|*[!0-9]*|0) echo "tls.sh: --rounds, --seconds, --conns take a positive integer" >&2; exit 2;; esac
done
case "$URLPATH" in /small|/16k) ;; *) echo "tls.sh: --path is /small or /16k" >&2; exit 2;; esac
case "$KEY" in ec|rsa) ;; *) echo "tls.sh: --key is ec or rsa" >&2; exit 2;; esac
for t in nginx haproxy wrk openssl curl; do
  command -v "$t" >/dev/null || { echo "tls.sh: $t not found (apt-get install nginx-light haproxy wrk openssl curl)" >&2; exit 2; }
done

if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
[ -d "$BUILDDIR" ] || { echo "tls.sh: no build directory $BUILDDIR (set BUILDDIR)" >&2; exit 2; }
BUILDDIR=$(cd "$BUILDDIR" && pwd)
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
[ -x "$RELAIS" ] || { echo "tls.sh: no relais binary at $RELAIS (set BUILDDIR or RELAIS)" >&2; exit 2; }
[ -d "$RELAIS_PLUGIN_DIR" ] || { echo "tls.sh: no plugin directory $RELAIS_PLUGIN_DIR" >&2; exit 2; }
RELAIS=$(cd "$(dirname "$RELAIS")" && pwd)/$(basename "$RELAIS")
RELAIS_PLUGIN_DIR=$(cd "$RELAIS_PLUGIN_DIR" && pwd)

BACKEND_PORT=18080
TARGETS=("relais:18443" "haproxy:18444" "nginx:18445")
MODES=(keepalive close)
for p in "$BACKEND_PORT" 18443 18444 18445; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "tls.sh: 127.0.0.1:$p is in use (another benchmark running?)" >&2; exit 2
  fi
done

. "$(dirname "$0")/common.sh"
bench_workdir relais-tls-bench

# ---- the certificate (self-signed; wrk does not verify it)
if [ "$KEY" = ec ]; then
  NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); KEYDESC="EC P-256"
else
  NEWKEY=(-newkey rsa:2048); KEYDESC="RSA-2048"
fi
bench_cert "$W" tls.sh "${NEWKEY[@]}"
FPR=$(openssl x509 -noout -fingerprint -sha256 -in "$W/bench.crt")

# ---- backend (as shared/bench/peers.sh)
bench_backend "$W" "$BACKEND_PORT"

# ---- relais: static + dynamic configuration
cat > "$W/relais.yaml" <<EOF
entryPoints:
  websecure:
    address: "127.0.0.1:18443"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$W/relais.dynamic.yaml"
    watch: false
log:
  level: INFO
EOF
# The certificate is in tls.certificates; it is also the default store's
# certificate, so that whatever SNI wrk sends (an IP address is no DNS
# name), relais serves that same certificate, as HAProxy and nginx do.
cat > "$W/relais.dynamic.yaml" <<EOF
http:
  routers:
    all:
      rule: "PathPrefix(\`/\`)"
      service: backend
      tls: {}
  services:
    backend:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:$BACKEND_PORT"
tls:
  certificates:
    - certFile: "$W/bench.crt"
      keyFile: "$W/bench.key"
  stores:
    default:
      defaultCertificate:
        certFile: "$W/bench.crt"
        keyFile: "$W/bench.key"
EOF
if ! out=$("$RELAIS" --check --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); then
  echo "$out" >&2; echo "tls.sh: relais --check failed" >&2; exit 1
fi

# ---- HAProxy
cat > "$W/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:18444 ssl crt $W/bench.pem
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
EOF

# ---- nginx
cat > "$W/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:18445 ssl backlog=4096;
    ssl_certificate $W/bench.crt;
    ssl_certificate_key $W/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default stops at TLS 1.2
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
EOF

# ---- start everything, pinned
PX=(); LD=(); PINDESC="none"
if [ "$PIN" = 1 ] && command -v taskset >/dev/null; then
  last=$(( $(nproc) - 1 )); PX=(taskset -c 0); LD=(taskset -c "$last")
  PINDESC="proxies cpu0, backend+wrk cpu$last"
fi
declare -A PID
"${LD[@]}" nginx -c "$W/backend.conf" -p "$W" >"$W/backend.log" 2>&1 & PIDS+=($!)
"${PX[@]}" "$RELAIS" --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --workers 1 \
  >"$W/relais.log" 2>&1 & PIDS+=($!); PID[relais]=$!
"${PX[@]}" haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & PIDS+=($!); PID[haproxy]=$!
"${PX[@]}" nginx -c "$W/nginx.conf" -p "$W" >"$W/nginx.log" 2>&1 & PIDS+=($!); PID[nginx]=$!

# wait_ok SCHEME PORT: until GET SCHEME://127.0.0.1:PORT$URLPATH answers 200
wait_ok() {
  for _ in $(seq 1 100); do
    if curl -fsSk -o /dev/null "$1://127.0.0.1:$2$URLPATH" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "tls.sh: nothing answers 200 on $1://127.0.0.1:$2$URLPATH" >&2
  for f in "$W"/*.log "$W"/*.err; do [ -s "$f" ] && { echo "== $f" >&2; tail -5 "$f" >&2; }; done
  return 1
}
wait_ok http "$BACKEND_PORT"
for t in "${TARGETS[@]}"; do wait_ok https "${t#*:}"; done

# Every proxy must serve our certificate, with or without SNI, and the
# handshake parameters are printed so that they can be compared.
TLSDESC=()
for t in "${TARGETS[@]}"; do
  name=${t%%:*}; port=${t#*:}
  for sni in "-servername 127.0.0.1" "-noservername"; do
    # shellcheck disable=SC2086
    got=$(echo | openssl s_client -connect "127.0.0.1:$port" $sni 2>/dev/null |
      openssl x509 -noout -fingerprint -sha256 2>/dev/null || true)
    if [ "$got" != "$FPR" ]; then
      echo "tls.sh: $name does not serve the benchmark certificate ($sni)" >&2; exit 1
    fi
  done
  s=$(echo | openssl s_client -connect "127.0.0.1:$port" -servername 127.0.0.1 2>/dev/null)
  proto=$(sed -n 's/^New, \([^,]*\), Cipher is \(.*\)$/\1 \2/p' <<<"$s" | head -1)
  group=$(sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' <<<"$s" | head -1)
  TLSDESC+=("$name: $proto $group")
  case "$proto" in TLSv1.3*) ;; *) echo "tls.sh: warning: $name negotiates ${proto:-nothing}, not TLS 1.3" >&2;; esac
done

cpu_ticks() { # user+sys clock ticks of a process and its children (threads included)
  local t=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    [ -r "/proc/$p/stat" ] || continue
    t=$(( t + $(awk '{sub(/^.*\) /,""); print $12+$13}' "/proc/$p/stat") ))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s -> ms
  awk -v v="$1" 'BEGIN{
    if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 }
    else printf "nan" }'
}

# Results per "target/mode": space-separated values of every round; the
# errors are summed counters (non2xx connect read write timeout).
declare -A RPS P50 P99 CPU ERRS DEAD
for k in "${TARGETS[@]}"; do for m in "${MODES[@]}"; do ERRS[${k%%:*}/$m]="0 0 0 0 0"; done; done
START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ); START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq 1 "$ROUNDS"); do
  for m in "${MODES[@]}"; do
    hdr=(); [ "$m" = close ] && hdr=(-H "Connection: close")
    for t in "${TARGETS[@]}"; do
      name=${t%%:*}; port=${t#*:}; k=$name/$m
      if ! kill -0 "${PID[$name]}" 2>/dev/null; then DEAD[$name]=1; continue; fi
      c0=$(cpu_ticks "${PID[$name]}")
      out=$("${LD[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${hdr[@]}" \
        "https://127.0.0.1:$port$URLPATH" 2>&1 || true)
      c1=$(cpu_ticks "${PID[$name]}")
      rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
      reqs=$(awk '/requests in/{print $1}' <<<"$out")
      if [ -z "$rps" ] || [ -z "$reqs" ]; then
        echo "tls.sh: wrk gave no result for $name ($m): $(tail -1 <<<"$out")" >&2
        continue
      fi
      RPS[$k]+="$rps "
      P50[$k]+="$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")") "
      P99[$k]+="$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")") "
      [ "$reqs" -gt 0 ] &&
        CPU[$k]+="$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.2f", d / hz * 1e6 / n}') "
      # "Socket errors: connect 0, read 12, write 0, timeout 0" / "Non-2xx or 3xx responses: 5"
      e=$(awk -v prev="${ERRS[$k]}" '
        BEGIN { split(prev, a, " ") }
        /Non-2xx or 3xx responses:/ { a[1] += $NF }
        /Socket errors:/ { gsub(/,/, ""); a[2] += $4; a[3] += $6; a[4] += $8; a[5] += $10 }
        END { print a[1], a[2], a[3], a[4], a[5] }' <<<"$out")
      ERRS[$k]=$e
    done
  done
done
for t in "${TARGETS[@]}"; do
  name=${t%%:*}
  kill -0 "${PID[$name]}" 2>/dev/null || DEAD[$name]=1
done


echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | head -1))"
echo "# $(haproxy -v 2>&1 | head -1); $(nginx -v 2>&1); $(openssl version)"
echo "# date: $START_DATE  host: $(uname -sr)  cores: $(nproc)  load before: $START_LOAD  after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "# key=%s path=%s conns=%s rounds=%s seconds=%s pin=%s\n" "$KEYDESC" "$URLPATH" "$CONNS" "$ROUNDS" "$SECS" "$PINDESC"
for d in "${TLSDESC[@]}"; do echo "#   $d"; done
echo "# keepalive: many requests per connection; close: one full handshake per request (req/s = handshakes/s)"
printf "%-8s %-9s %10s %8s %9s %9s %10s %10s  %s\n" target mode req/s spread% p50_ms p99_ms vs_haproxy cpu_us/req errors
for m in "${MODES[@]}"; do
  hap=$(median <<<"${RPS[haproxy/$m]:-}")
  for t in "${TARGETS[@]}"; do
    name=${t%%:*}; k=$name/$m
    v=$(median <<<"${RPS[$k]:-}")
    printf "%-8s %-9s %10.0f %8s %9s %9s %10s %10s  %s%s\n" "$name" "$m" "$v" "$(spread "${RPS[$k]:-}")" \
      "$(median <<<"${P50[$k]:-}")" "$(median <<<"${P99[$k]:-}")" \
      "$(awk -v a="$v" -v b="$hap" 'BEGIN{ if (b+0 > 0) printf "%.3f", a/b; else print "nan" }')" \
      "$( [ -n "${CPU[$k]:-}" ] && median <<<"${CPU[$k]}" || echo -)" \
      "$(errtext "${ERRS[$k]}")" "${DEAD[$name]:+ (process died)}"
  done
done
