#!/usr/bin/env bash
# test_metrics.sh — the Prometheus endpoint (metrics.prometheus, entry
# point "traefik", GET /metrics), black box with whoami servers:
#
#  - known requests (codes 200/404/503, methods GET/POST/DELETE, one SSE)
#    give exact relais_entrypoint/router/service_requests_total values per
#    label set, histogram _count/+Inf, and request/response byte totals
#    equal to what curl sent and received;
#  - open_connections counts K held client connections;
#  - config_reloads_total grows by one on a file-provider change and
#    config_last_reload_success is a recent Unix time;
#  - service_server_up is 1, then 0 once the server is killed (health
#    check every 200ms);
#  - tls_certs_not_after equals the certificate's notAfter (openssl x509
#    -enddate) with its cn, decimal serial and DNS names;
#  - `promtool check metrics` prints nothing and exits 0 on the output;
#  - addRoutersLabels / addServicesLabels decide which families exist;
#  - a bad buckets value fails --check with its key path.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || { echo "Bail out! promtool not found (Debian package prometheus: see tests/run.sh)"; exit 1; }

start_whoami a || { echo "Bail out! whoami a did not start"; exit 1; }
A=$WHOAMI_PORT
start_whoami b || { echo "Bail out! whoami b did not start"; exit 1; }
B=$WHOAMI_PORT
B_PID=${PIDS[-1]}
WEB=$(free_port)
TP=$(free_port)
TLSP=$(free_port)

if ! pki_ca "$T" ca || ! pki_leaf "$T" site ca "DNS:site.test,DNS:www.site.test" "" "/CN=site.test"; then
  echo "Bail out! openssl failed: $(tail -3 "$T/pki.log")"; exit 1
fi

# dyn EXTRA: the dynamic configuration (EXTRA: one more router line).
dyn() {
  cat <<EOF
http:
  routers:
    r1: {rule: "PathPrefix(\`/\`)", service: s1, entryPoints: [web]}
    r2: {rule: "PathPrefix(\`/two\`)", service: s2, entryPoints: [web]}
    rt: {rule: "Host(\`site.test\`)", service: s1, entryPoints: [websecure], tls: {}}
$1
  services:
    s1:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$A"}]
    s2:
      loadBalancer:
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms}
        servers: [{url: "http://127.0.0.1:$B"}]
tls:
  certificates:
    - {certFile: "$T/site.pem", keyFile: "$T/site.key"}
EOF
}
# static FILE PROMETHEUS-MAP: a static configuration.
static() {
  cat >"$1" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$WEB"}
  traefik: {address: "127.0.0.1:$TP"}
  websecure: {address: "127.0.0.1:$TLSP"}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/dynamic.yaml", watch: true}
metrics:
  prometheus: $2
log: {level: DEBUG}
workers: 2
EOF
}
dyn "" >"$T/dynamic.yaml"
static "$T/relais.yaml" "{entryPoint: traefik, addRoutersLabels: true, buckets: [0.05, 0.5, 2]}"

# ---- a bad buckets value fails --check with its key path
static "$T/bad.yaml" "{entryPoint: traefik, buckets: [0.5, 0.1]}"
out=$("$RELAIS" --check --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1)
rc=$?
ok "--check fails on decreasing buckets" [ "$rc" -ne 0 ]
like "the error names metrics.prometheus.buckets" "metrics\.prometheus\.buckets: .*increasing" "$out"
static "$T/bad2.yaml" "{entryPoint: traefik, buckets: [0.1, soon]}"
out=$("$RELAIS" --check --config "$T/bad2.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1)
like "a bucket that is no number: its index in the path" "metrics\.prometheus\.buckets\[1\]" "$out"
out=$("$RELAIS" --check --config "$T/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1)
like "the good configuration passes --check" "configuration OK" "$out"

start_relais "$T/relais.yaml" "$WEB" || { echo "Bail out! relais did not start"; exit 1; }
wait_port "$TP"
wait_log "configuration [0-9]+ applied: 3 routers" 5 || { echo "Bail out! no configuration"; exit 1; }

# scrape FILE: GET /metrics into FILE; prints the HTTP status and type.
scrape() { curl -s -m 5 -o "$1" -w '%{http_code} %{content_type}' "http://127.0.0.1:$TP/metrics"; }
# metric SERIES FILE: the value of the series (name{labels} exactly as
# printed), or "absent".
metric() {
  awk -v k="$1" '{ i = length($0); while (i > 0 && substr($0, i, 1) != " ") i--;
    if (substr($0, 1, i - 1) == k) { print substr($0, i + 1); f = 1 } }
    END { if (!f) print "absent" }' "$2"
}

# ---- known requests on web (each on its own connection)
up=0 down=0
for _ in 1 2 3 4; do
  read -r u d < <(curl -s -m 5 -o /dev/null -w '%{size_upload} %{size_download}\n' \
    "http://127.0.0.1:$WEB/data?size=1234")
  up=$((up + u)) down=$((down + d))
done
for _ in 1 2 3; do curl -s -m 5 -o /dev/null "http://127.0.0.1:$WEB/?status=404"; done
pup=0 pdown=0
head -c 1000 /dev/zero | tr '\0' 'u' >"$T/body"
for _ in 1 2; do
  read -r u d < <(curl -s -m 5 -o /dev/null -w '%{size_upload} %{size_download}\n' \
    --data-binary @"$T/body" "http://127.0.0.1:$WEB/upload")
  pup=$((pup + u)) pdown=$((pdown + d))
done
curl -s -m 5 -o /dev/null -X DELETE "http://127.0.0.1:$WEB/?status=503"
curl -s -m 5 -o /dev/null -H 'Accept: text/event-stream' "http://127.0.0.1:$WEB/sse"
for _ in 1 2; do curl -s -m 5 -o /dev/null "http://127.0.0.1:$WEB/two"; done

is "scrape: 200 with the text format's type" "200 text/plain; version=0.0.4; charset=utf-8" \
  "$(scrape "$T/m1.txt")"
EPL='protocol="http",entrypoint="web"'
is "entrypoint GET 200 (4 to s1, 2 to s2)" 6 "$(metric "relais_entrypoint_requests_total{code=\"200\",method=\"GET\",$EPL}" "$T/m1.txt")"
is "entrypoint GET 404" 3 "$(metric "relais_entrypoint_requests_total{code=\"404\",method=\"GET\",$EPL}" "$T/m1.txt")"
is "entrypoint POST 200" 2 "$(metric "relais_entrypoint_requests_total{code=\"200\",method=\"POST\",$EPL}" "$T/m1.txt")"
is "entrypoint DELETE 503" 1 "$(metric "relais_entrypoint_requests_total{code=\"503\",method=\"DELETE\",$EPL}" "$T/m1.txt")"
is "entrypoint SSE request: protocol sse" 1 \
  "$(metric 'relais_entrypoint_requests_total{code="200",method="GET",protocol="sse",entrypoint="web"}' "$T/m1.txt")"
is "router r1 GET 200 (with its service)" 4 \
  "$(metric 'relais_router_requests_total{code="200",method="GET",protocol="http",router="r1@file",service="s1@file"}' "$T/m1.txt")"
is "router r2 GET 200" 2 \
  "$(metric 'relais_router_requests_total{code="200",method="GET",protocol="http",router="r2@file",service="s2@file"}' "$T/m1.txt")"
is "service s1 GET 404" 3 \
  "$(metric 'relais_service_requests_total{code="404",method="GET",protocol="http",service="s1@file"}' "$T/m1.txt")"
is "service s2 GET 200" 2 \
  "$(metric 'relais_service_requests_total{code="200",method="GET",protocol="http",service="s2@file"}' "$T/m1.txt")"
S1L='protocol="http",service="s1@file"'
is "histogram _count (entrypoint GET 200)" 6 \
  "$(metric "relais_entrypoint_request_duration_seconds_count{code=\"200\",method=\"GET\",$EPL}" "$T/m1.txt")"
is "histogram +Inf bucket = _count (s1 GET 200)" 4 \
  "$(metric "relais_service_request_duration_seconds_bucket{code=\"200\",method=\"GET\",$S1L,le=\"+Inf\"}" "$T/m1.txt")"
is "histogram le=2 bucket: the fast requests (s1 GET 200)" 4 \
  "$(metric "relais_service_request_duration_seconds_bucket{code=\"200\",method=\"GET\",$S1L,le=\"2\"}" "$T/m1.txt")"
is "histogram _count (s1 GET 200)" 4 \
  "$(metric "relais_service_request_duration_seconds_count{code=\"200\",method=\"GET\",$S1L}" "$T/m1.txt")"
SUM=$(metric "relais_service_request_duration_seconds_sum{code=\"200\",method=\"GET\",$S1L}" "$T/m1.txt")
like "histogram _sum is a number of seconds (µs precision)" '^[0-9]+\.[0-9]{6}$' "$SUM"
ok "... above 0 and below 5 s for 4 quick requests ($SUM)" \
  python3 -c "import sys; sys.exit(0 if 0 < float('$SUM') < 5 else 1)"
is "response bytes (s1 GET 200) = bytes curl received ($down)" "$down" \
  "$(metric "relais_service_responses_bytes_total{code=\"200\",method=\"GET\",$S1L}" "$T/m1.txt")"
is "request bytes (POST 200) = bytes curl sent ($pup)" "$pup" \
  "$(metric "relais_entrypoint_requests_bytes_total{code=\"200\",method=\"POST\",$EPL}" "$T/m1.txt")"
is "response bytes (POST 200) = bytes curl received ($pdown)" "$pdown" \
  "$(metric 'relais_service_responses_bytes_total{code="200",method="POST",protocol="http",service="s1@file"}' "$T/m1.txt")"
is "GET requests sent no body" 0 "$up"
is "server_up of s2's server: 1" 1 \
  "$(metric "relais_service_server_up{service=\"s2@file\",url=\"http://127.0.0.1:$B\"}" "$T/m1.txt")"
is "nothing dropped" 0 "$(metric relais_metrics_series_dropped_total "$T/m1.txt")"

# ---- tls_certs_not_after
end=$(openssl x509 -enddate -noout -in "$T/site.pem" | sed 's/^notAfter=//')
end_s=$(date -u -d "$end" +%s)
serial=$(python3 -c "import sys; print(int(sys.argv[1], 16))" \
  "$(openssl x509 -serial -noout -in "$T/site.pem" | sed 's/^serial=//')")
is "tls_certs_not_after = notAfter ($end)" "$end_s" \
  "$(metric "relais_tls_certs_not_after{cn=\"site.test\",serial=\"$serial\",sans=\"site.test,www.site.test\"}" "$T/m1.txt")"

# ---- promtool
out=$(promtool check metrics <"$T/m1.txt" 2>&1)
rc=$?
is "promtool check metrics: exit 0" 0 "$rc"
is "promtool check metrics: silent" "" "$out"

# ---- open connections: K held connections on web
K=3
python3 - "$WEB" "$K" >"$T/hold.out" 2>&1 <<'PYEOF' &
import socket, sys, time
port, k = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(k)]
print("held", flush=True)
time.sleep(4)
PYEOF
HOLD_PID=$!
PIDS+=("$HOLD_PID")
got=absent
for _ in $(seq 1 40); do
  scrape "$T/m2.txt" >/dev/null
  got=$(metric 'relais_open_connections{entrypoint="web",protocol="TCP"}' "$T/m2.txt")
  [ "$got" = "$K" ] && break
  sleep 0.1
done
is "open_connections on web = $K held connections" "$K" "$got"
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
for _ in $(seq 1 40); do
  scrape "$T/m2.txt" >/dev/null
  got=$(metric 'relais_open_connections{entrypoint="web",protocol="TCP"}' "$T/m2.txt")
  [ "$got" = 0 ] && break
  sleep 0.1
done
is "open_connections back to 0 once they closed" 0 "$got"

# ---- config reloads
r0=$(metric relais_config_reloads_total "$T/m2.txt")
n0=$(grep -c "configuration [0-9]* applied" "$T/relais.log")
# shellcheck disable=SC2016 # the backquotes belong to the rule
dyn '    r3: {rule: "PathPrefix(`/three`)", service: s1, entryPoints: [web]}' >"$T/dynamic.yaml.tmp"
mv -f "$T/dynamic.yaml.tmp" "$T/dynamic.yaml"
ok "the change is applied" wait_log "configuration [0-9]+ applied: 4 routers" 5
sleep 0.3
n1=$(grep -c "configuration [0-9]* applied" "$T/relais.log")
scrape "$T/m3.txt" >/dev/null
is "config_reloads_total grew by the configurations applied" "$((r0 + n1 - n0))" \
  "$(metric relais_config_reloads_total "$T/m3.txt")"
ok "config_reloads_total grew" [ "$(metric relais_config_reloads_total "$T/m3.txt")" -gt "$r0" ]
last=$(metric relais_config_last_reload_success "$T/m3.txt")
now=$(date +%s)
ok "config_last_reload_success is a recent Unix time ($last, now $now)" \
  [ "$last" -le "$now" -a "$last" -ge $((now - 10)) ]

# ---- server_up 0 once the server is killed
kill "$B_PID"
got=absent
for _ in $(seq 1 30); do
  scrape "$T/m4.txt" >/dev/null
  got=$(metric "relais_service_server_up{service=\"s2@file\",url=\"http://127.0.0.1:$B\"}" "$T/m4.txt")
  [ "$got" = 0 ] && break
  sleep 0.1
done
is "server_up of the killed server: 0" 0 "$got"
out=$(promtool check metrics <"$T/m4.txt" 2>&1)
is "promtool: the later scrape is clean too" "0:" "$?:$out"
stop_relais_clean "$RELAIS_PID"

# ---- addRoutersLabels off (default), addServicesLabels off
static "$T/relais2.yaml" "{entryPoint: traefik, addServicesLabels: false}"
: >"$T/relais.log"
start_relais "$T/relais2.yaml" "$WEB" || { echo "Bail out! relais did not start again"; exit 1; }
wait_port "$TP"
wait_log "configuration [0-9]+ applied: 4 routers" 5
for _ in 1 2; do curl -s -m 5 -o /dev/null "http://127.0.0.1:$WEB/data?size=10"; done
scrape "$T/m5.txt" >/dev/null
is "defaults: entrypoint family present" 2 \
  "$(metric "relais_entrypoint_requests_total{code=\"200\",method=\"GET\",$EPL}" "$T/m5.txt")"
is "addRoutersLabels false (default): no router family" 0 "$(grep -c '^relais_router_' "$T/m5.txt")"
is "addServicesLabels false: no service family" 0 "$(grep -c '^relais_service_' "$T/m5.txt")"
out=$(promtool check metrics <"$T/m5.txt" 2>&1)
is "promtool: clean" "0:" "$?:$out"
stop_relais_clean "$RELAIS_PID"
t_done
