#!/usr/bin/env bash
# bench/h2.sh — HTTP/2 (issue 9): relais against HAProxy and nginx, h2load
# over h2c (prior knowledge, http://) and over TLS (ALPN h2, https://).
# Not a test: never run by make check.
#
# Starts one backend (nginx, 1 worker, plain HTTP/1.1 on 127.0.0.1:18080:
# /small = 12 bytes, /16k = 16 KiB) and three proxies in front of it, each
# with one thread/worker, each with an h2c port and a TLS port (the same
# certificate for all, made here with openssl: EC P-256), all keeping their
# HTTP/1.1 connections to the backend alive:
#
#   target   h2c    tls    configuration
#   relais   18450  18453  entry points web + websecure, router tls: {}
#   haproxy  18451  18454  bind ... proto h2 / bind ... ssl crt ... alpn h2
#   nginx    18452  18455  listen ... http2 / listen ... ssl http2
#
# relais is measured only where it answers HTTP/2: before the rounds, one
# `h2load -n1` per port must succeed with protocol h2c (plain) or h2 (TLS,
# negotiated by ALPN: h2load would otherwise fall back to HTTP/1.1).
# Where it does not, its row reads "relais: no HTTP/2 yet" and the script
# goes on; HAProxy and nginx must pass the same check or the script fails.
#
# Load: h2load -t1 -cC -mM -DS (one client thread, C connections, M
# concurrent streams per connection, S seconds) per target and mode, rounds
# interleaved (relais haproxy nginx, relais haproxy nginx, ...) so that
# machine drift hits every target alike.
#
# Prints per mode (h2c, tls) and target the median req/s, its spread over
# the rounds ((max - min) / median, in percent), h2load's "time for
# request" mean, sd and max (h2load reports no percentiles: min, max,
# mean, sd only), the ratio against HAProxy, the proxy's CPU time per
# request (user+sys of its processes from /proc / requests done: the figure
# a busy machine disturbs least) and the errors summed over the rounds:
# non-2xx responses, h2load's failed, errored and timeout counts, and runs
# that did not speak the expected protocol (proto).
#
# Usage:
#   bench/h2.sh [--rounds N] [--seconds S] [--conns C] [--streams M]
#               [--path /small|/16k] [--modes "h2c tls"] [--no-pin]
#   (defaults: 3 rounds of 5 s, 16 connections x 16 streams, /small, both
#   modes; HAProxy 2.6 allows 100 concurrent streams per connection, nginx
#   128: keep --streams at or below 100)
#
# By default the proxies are pinned to CPU 0 and the backend and h2load to
# the last CPU (taskset); --no-pin turns that off.
#
# Environment (as bench/tls.sh):
#   BUILDDIR           build tree holding src/relais and plugins-staged/
#                      (default: $PWD when it holds src/relais, else
#                      /tmp/build-bench; build it with CFLAGS="-O2 -g")
#   RELAIS             relais binary (default $BUILDDIR/src/relais); when
#                      there is none, relais' rows say so and the rest runs
#   RELAIS_PLUGIN_DIR  plugin directory (default $BUILDDIR/plugins-staged)
#
# Needs: nginx with http_v2 and ssl (nginx-light has both), haproxy (built
# with OpenSSL), h2load (nghttp2-client), openssl, curl, timeout, taskset.
# Only 127.0.0.1 is used; the ports 18080 and 18450-18455 must be free.
# Every h2load run is bounded (timeout S + 15 s). Every process started
# here is stopped on exit and its files removed, Ctrl-C included.
set -euo pipefail

ROUNDS=3; SECS=5; CONNS=16; STREAMS=16; URLPATH=/small; PIN=1; MODES=(h2c tls)
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2;;
    --seconds) SECS="$2"; shift 2;;
    --conns) CONNS="$2"; shift 2;;
    --streams) STREAMS="$2"; shift 2;;
    --path) URLPATH="$2"; shift 2;;
    --modes) read -ra MODES <<<"$2"; shift 2;;
    --no-pin) PIN=0; shift;;
    -h|--help) usage; exit 0;;
    *) echo "h2.sh: unknown argument $1 (--help)" >&2; exit 2;;
  esac
done
for v in "$ROUNDS" "$SECS" "$CONNS" "$STREAMS"; do
  case "$v" in ''|*[!0-9]*|0) echo "h2.sh: --rounds, --seconds, --conns, --streams take a positive integer" >&2; exit 2;; esac
done
case "$URLPATH" in /small|/16k) ;; *) echo "h2.sh: --path is /small or /16k" >&2; exit 2;; esac
[ "${#MODES[@]}" -gt 0 ] || { echo "h2.sh: --modes is \"h2c\", \"tls\" or \"h2c tls\"" >&2; exit 2; }
for m in "${MODES[@]}"; do
  case "$m" in h2c|tls) ;; *) echo "h2.sh: --modes is \"h2c\", \"tls\" or \"h2c tls\"" >&2; exit 2;; esac
done
for t in nginx haproxy h2load openssl curl timeout; do
  command -v "$t" >/dev/null || { echo "h2.sh: $t not found (apt-get install nginx-light haproxy nghttp2-client openssl curl)" >&2; exit 2; }
done

if [ -z "${BUILDDIR:-}" ]; then
  if [ -x "$PWD/src/relais" ]; then BUILDDIR=$PWD; else BUILDDIR=/tmp/build-bench; fi
fi
RELAIS=${RELAIS:-$BUILDDIR/src/relais}
RELAIS_PLUGIN_DIR=${RELAIS_PLUGIN_DIR:-$BUILDDIR/plugins-staged}
HAVE_RELAIS=1
if [ ! -x "$RELAIS" ] || [ ! -d "$RELAIS_PLUGIN_DIR" ]; then
  echo "h2.sh: warning: no relais binary at $RELAIS or no plugin directory $RELAIS_PLUGIN_DIR (set BUILDDIR, RELAIS, RELAIS_PLUGIN_DIR): measuring HAProxy and nginx only" >&2
  HAVE_RELAIS=0
else
  RELAIS=$(cd "$(dirname "$RELAIS")" && pwd)/$(basename "$RELAIS")
  RELAIS_PLUGIN_DIR=$(cd "$RELAIS_PLUGIN_DIR" && pwd)
fi

BACKEND_PORT=18080
# Every stream in flight holds one backend connection (HTTP/1.1), so each
# proxy may keep C x M of them idle (+ a margin): nginx's upstream keepalive
# and relais' maxIdleConnsPerHost (200 by default) are raised to KEEP, or
# they would close and reopen backend connections all the time; HAProxy's
# idle pool is unbounded by default.
KEEP=$(( CONNS * STREAMS + 64 )); [ "$KEEP" -ge 128 ] || KEEP=128
NAMES=(relais haproxy nginx)
declare -A PORT=([relais/h2c]=18450 [haproxy/h2c]=18451 [nginx/h2c]=18452
                 [relais/tls]=18453 [haproxy/tls]=18454 [nginx/tls]=18455)
declare -A SCHEME=([h2c]=http [tls]=https)
declare -A PROTO=([h2c]=h2c [tls]=h2)   # h2load's "Application protocol:"
for p in "$BACKEND_PORT" 18450 18451 18452 18453 18454 18455; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "h2.sh: 127.0.0.1:$p is in use (another benchmark running?)" >&2; exit 2
  fi
done

# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
bench_workdir relais-h2-bench

# ---- the certificate (self-signed; h2load does not verify it)
bench_cert "$W" h2.sh

# ---- backend (as tls.sh): HTTP/1.1 only
bench_backend "$W" "$BACKEND_PORT"

# ---- relais: static + dynamic configuration. One router per entry point:
# "plain" on web (h2c), "secure" on websecure with tls: {}.
cat > "$W/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:${PORT[relais/h2c]}"
  websecure:
    address: "127.0.0.1:${PORT[relais/tls]}"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$W/relais.dynamic.yaml"
    watch: false
serversTransport:
  maxIdleConnsPerHost: $KEEP
log:
  level: INFO
EOF
# The certificate is also the default store's, so that whatever SNI h2load
# sends (an IP address is no DNS name), relais serves it, as the others do.
cat > "$W/relais.dynamic.yaml" <<EOF
http:
  routers:
    plain:
      rule: "PathPrefix(\`/\`)"
      entryPoints: [web]
      service: backend
    secure:
      rule: "PathPrefix(\`/\`)"
      entryPoints: [websecure]
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
RELAIS_STATE=""   # why relais is not measured at all ("" = it is)
if [ "$HAVE_RELAIS" = 0 ]; then
  RELAIS_STATE="no relais binary"
elif ! out=$("$RELAIS" --check --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1); then
  echo "$out" >&2; echo "h2.sh: warning: relais --check failed: relais not measured" >&2
  RELAIS_STATE="relais --check failed"
fi

# ---- HAProxy: h2c by "proto h2" (prior knowledge), h2 by ALPN
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
frontend fe_h2c
  bind 127.0.0.1:${PORT[haproxy/h2c]} proto h2
  default_backend be
frontend fe_tls
  bind 127.0.0.1:${PORT[haproxy/tls]} ssl crt $W/bench.pem alpn h2,http/1.1
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
EOF

# ---- nginx: "listen ... http2" without ssl is h2c by prior knowledge
cat > "$W/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;   # also bounds the requests per h2 connection
  upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive $KEEP; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${PORT[nginx/h2c]} http2 backlog=4096;
    listen 127.0.0.1:${PORT[nginx/tls]} ssl http2 backlog=4096;
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
  PINDESC="proxies cpu0, backend+h2load cpu$last"
fi
declare -A PID
"${LD[@]}" nginx -c "$W/backend.conf" -p "$W" >"$W/backend.log" 2>&1 & PIDS+=($!)
if [ -z "$RELAIS_STATE" ]; then
  "${PX[@]}" "$RELAIS" --config "$W/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --workers 1 \
    >"$W/relais.log" 2>&1 & PIDS+=($!); PID[relais]=$!
fi
"${PX[@]}" haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & PIDS+=($!); PID[haproxy]=$!
"${PX[@]}" nginx -c "$W/nginx.conf" -p "$W" >"$W/nginx.log" 2>&1 & PIDS+=($!); PID[nginx]=$!

# wait_ok SCHEME PORT [ARGS...]: until curl (HTTP/1.1, or ARGS) gets a 200
# for SCHEME://127.0.0.1:PORT$URLPATH; 10 s at most. Returns 1 (and shows
# the logs) if it never does.
wait_ok() {
  local s=$1 p=$2 end=$((SECONDS + 10)); shift 2
  while [ "$SECONDS" -lt "$end" ]; do
    if curl -fsSk --max-time 2 "$@" -o /dev/null "$s://127.0.0.1:$p$URLPATH" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "h2.sh: nothing answers 200 on $s://127.0.0.1:$p$URLPATH" >&2
  for f in "$W"/*.log "$W"/*.err; do [ -s "$f" ] && { echo "== $f" >&2; tail -5 "$f" >&2; }; done
  return 1
}
wait_ok http "$BACKEND_PORT"
# HAProxy and nginx: h2c by prior knowledge, TLS over HTTP/1.1 (to see they
# are up; the h2 check is h2probe's)
for n in haproxy nginx; do
  wait_ok http "${PORT[$n/h2c]}" --http2-prior-knowledge
  wait_ok https "${PORT[$n/tls]}"
done
# relais: up at all? (its TLS port answers HTTP/1.1 whether or not it has h2)
if [ -z "$RELAIS_STATE" ] && ! wait_ok https "${PORT[relais/tls]}"; then
  echo "h2.sh: warning: relais does not answer: relais not measured" >&2
  RELAIS_STATE="relais did not start or answer (see the stderr above)"
fi

# h2run URL H2LOAD-ARGS...: h2load -t1 on URL, bounded in time; prints its
# output (and a line "h2.sh: timed out" if timeout had to stop it).
h2run() {
  local url=$1; shift
  "${LD[@]}" timeout -k 2 "$((SECS + 15))" h2load -t1 "$@" "$url" 2>&1 || {
    [ $? = 124 ] && echo "h2.sh: timed out"; true; }
}
# h2probe NAME MODE: one request over HTTP/2 to NAME's MODE port; succeeds
# when it is done with a 2xx over the expected protocol (h2c / h2 by ALPN).
# Sets PROBE to h2load's output (or to the reason it failed).
h2probe() {
  local url="${SCHEME[$2]}://127.0.0.1:${PORT[$1/$2]}$URLPATH"
  PROBE=$(SECS=1 h2run "$url" -n1 -c1 -m1)
  if ! grep -q "^Application protocol: ${PROTO[$2]}\$" <<<"$PROBE"; then
    PROBE="protocol: $(sed -n 's/^Application protocol: //p' <<<"$PROBE" | head -1)"
    [ "$PROBE" = "protocol: " ] && PROBE="no HTTP/2 connection"
    return 1
  fi
  if ! grep -q '^requests: 1 total, 1 started, 1 done, 1 succeeded' <<<"$PROBE" ||
     ! grep -q '^status codes: 1 2xx' <<<"$PROBE"; then
    PROBE="$(awk '/^requests:/ { gsub(/,/, ""); printf "%s done, %s failed, %s errored, %s timeout", $6, $10, $12, $14 }
      /^status codes:/ { gsub(/,/, ""); printf ", %s 2xx", $3 }' <<<"$PROBE")"
    return 1
  fi
}
# Which target/mode pairs are measured: SKIP holds, for relais, the text of
# the row that replaces its numbers.
declare -A SKIP TLSDESC
for m in "${MODES[@]}"; do
  for n in "${NAMES[@]}"; do
    if [ "$n" = relais ] && [ -n "$RELAIS_STATE" ]; then SKIP[$n/$m]="relais: not measured ($RELAIS_STATE)"; continue; fi
    if ! h2probe "$n" "$m"; then
      if [ "$n" = relais ]; then SKIP[$n/$m]="relais: no HTTP/2 yet (h2load -n1: $PROBE)"; continue; fi
      echo "h2.sh: $n does not answer HTTP/2 ($m) on port ${PORT[$n/$m]}: $PROBE" >&2; exit 1
    fi
    if [ "$m" = tls ]; then
      TLSDESC[$n]="$(sed -n 's/^TLS Protocol: //p; s/^Cipher: //p; s/^Server Temp Key: \([^ ]*\).*/\1/p' <<<"$PROBE" | paste -sd' ')"
    fi
  done
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

to_ms() { # h2load time like 1.23ms / 456us / 1.02s -> ms
  awk -v v="$1" 'BEGIN{
    if (v ~ /us$/) { sub(/us$/,"",v); printf "%.3f", v/1000 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.3f", v*1000 }
    else printf "nan" }'
}
# h2errtext "NON2XX FAILED ERRORED TIMEOUT PROTO": the nonzero ones, else 0
# (errtext of common.sh, with h2load's counters)
h2errtext() {
  awk '{ s = ""; split("non2xx failed errored timeout proto", n, " ");
         for (i = 1; i <= 5; i++) if ($i > 0) s = s (s ? " " : "") n[i] "=" $i;
         print (s ? s : "0") }' <<<"$1"
}

# Results per "target/mode": space-separated values of every round; the
# errors are summed counters (non2xx failed errored timeout proto).
declare -A RPS MEAN SD MAX CPU ERRS DEAD
for n in "${NAMES[@]}"; do for m in "${MODES[@]}"; do ERRS[$n/$m]="0 0 0 0 0"; done; done
START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ); START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq 1 "$ROUNDS"); do
  for m in "${MODES[@]}"; do
    for n in "${NAMES[@]}"; do
      k=$n/$m
      [ -n "${SKIP[$k]:-}" ] && continue
      if ! kill -0 "${PID[$n]}" 2>/dev/null; then DEAD[$n]=1; continue; fi
      c0=$(cpu_ticks "${PID[$n]}")
      out=$(h2run "${SCHEME[$m]}://127.0.0.1:${PORT[$k]}$URLPATH" -c"$CONNS" -m"$STREAMS" -D"$SECS")
      c1=$(cpu_ticks "${PID[$n]}")
      # "finished in 5.00s, 61234.40 req/s, 4.52MB/s"
      rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
      done_=""; failed=0; errored=0; tmo=0; tmax=""; tmean=""; tsd=""
      # "requests: T total, S started, D done, OK succeeded, F failed, E errored, X timeout"
      read -r done_ failed errored tmo < <(awk '/^requests:/ { gsub(/,/, "");
        print $6, $10, $12, $14 }' <<<"$out") || true
      if [ -z "$rps" ] || [ -z "${done_:-}" ]; then
        echo "h2.sh: h2load gave no result for $n ($m): $(tail -1 <<<"$out")" >&2
        continue
      fi
      proto=0; grep -q "^Application protocol: ${PROTO[$m]}\$" <<<"$out" || proto=1
      RPS[$k]+="$rps "
      # "time for request:   123us   45.67ms   1.23ms   2.34ms   85.00%" (min max mean sd +/-sd)
      read -r tmax tmean tsd < <(awk '/^time for request:/ { print $5, $6, $7 }' <<<"$out") || true
      MEAN[$k]+="$(to_ms "${tmean:-}") "; SD[$k]+="$(to_ms "${tsd:-}") "; MAX[$k]+="$(to_ms "${tmax:-}") "
      [ "$done_" -gt 0 ] &&
        CPU[$k]+="$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$done_" 'BEGIN{printf "%.2f", d / hz * 1e6 / n}') "
      # "status codes: A 2xx, B 3xx, C 4xx, D 5xx"
      ERRS[$k]=$(awk -v prev="${ERRS[$k]}" -v f="$failed" -v e="$errored" -v t="$tmo" -v p="$proto" '
        BEGIN { split(prev, a, " "); a[2] += f; a[3] += e; a[4] += t; a[5] += p }
        /^status codes:/ { gsub(/,/, ""); a[1] += $5 + $7 + $9 }
        END { print a[1], a[2], a[3], a[4], a[5] }' <<<"$out")
    done
  done
done
for n in "${NAMES[@]}"; do
  [ -n "${PID[$n]:-}" ] || continue
  kill -0 "${PID[$n]}" 2>/dev/null || DEAD[$n]=1
done

if [ "$HAVE_RELAIS" = 1 ]; then
  echo "# relais: $RELAIS ($("$RELAIS" --version 2>&1 | head -1))"
fi
echo "# $(haproxy -v 2>&1 | head -1); $(nginx -v 2>&1); $(h2load --version 2>&1 | head -1); $(openssl version)"
echo "# date: $START_DATE  host: $(uname -sr)  cores: $(nproc)  load before: $START_LOAD  after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "# path=%s conns=%s streams/conn=%s rounds=%s seconds=%s h2load -t1 pin=%s key=EC P-256\n" \
  "$URLPATH" "$CONNS" "$STREAMS" "$ROUNDS" "$SECS" "$PINDESC"
for n in "${NAMES[@]}"; do [ -n "${TLSDESC[$n]:-}" ] && echo "#   tls $n: ${TLSDESC[$n]}"; done
echo "# h2c: cleartext HTTP/2 by prior knowledge; tls: HTTP/2 negotiated by ALPN; the backend is HTTP/1.1 keep-alive"
echo "# latency: h2load's \"time for request\" mean, sd, max (it has no percentiles)"
for m in "${MODES[@]}"; do
  echo
  printf "%-8s %-4s %10s %8s %9s %9s %9s %10s %10s  %s\n" target mode req/s spread% mean_ms sd_ms max_ms vs_haproxy cpu_us/req errors
  hap=$(median <<<"${RPS[haproxy/$m]:-}")
  for n in "${NAMES[@]}"; do
    k=$n/$m
    if [ -n "${SKIP[$k]:-}" ]; then
      printf "%-8s %-4s %s\n" "$n" "$m" "${SKIP[$k]}"
      continue
    fi
    v=$(median <<<"${RPS[$k]:-}")
    printf "%-8s %-4s %10.0f %8s %9s %9s %9s %10s %10s  %s%s\n" "$n" "$m" "$v" "$(spread "${RPS[$k]:-}")" \
      "$(median <<<"${MEAN[$k]:-}")" "$(median <<<"${SD[$k]:-}")" "$(median <<<"${MAX[$k]:-}")" \
      "$(awk -v a="$v" -v b="$hap" 'BEGIN{ if (b+0 > 0) printf "%.3f", a/b; else print "nan" }')" \
      "$( [ -n "${CPU[$k]:-}" ] && median <<<"${CPU[$k]}" || echo -)" \
      "$(h2errtext "${ERRS[$k]}")" "${DEAD[$n]:+ (process died)}"
  done
done
