#!/usr/bin/env bash
# test_tracing.sh — OpenTelemetry tracing (tracing, OTLP/HTTP JSON), black
# box, against otlp_receiver.py:
#
#  - no incoming traceparent: the server (whoami echoes the request
#    headers) receives a traceparent whose trace id is the exported spans'
#    and whose parent id is the CLIENT span's id; the CLIENT span's parent
#    is the SERVER span, a root; attributes (method, status, router name,
#    route, service, server URL with the query redacted but safe params,
#    a captured request header); serviceName and resourceAttributes in
#    the resource;
#  - an incoming sampled traceparent: same trace id, SERVER span's parent
#    is the incoming id, tracestate forwarded and recorded;
#  - an incoming unsampled traceparent: forwarded with flags 00, the same
#    trace id, nothing exported;
#  - 404 (no router): a SERVER span only, not ERROR; 502 (dead server):
#    SERVER and CLIENT spans both ERROR;
#  - sampleRate 0: traceparent forwarded (flags 00, a valid new trace id),
#    nothing exported;
#  - sampleRate 0.5 over 400 requests: 150 to 250 traces, exported
#    although the receiver answered 503 twice first;
#  - a dead receiver: every request answered 200, quickly, and the drop
#    count logged at most once a second;
#  - bad tracing settings refused by --check with their key path, otlp.grpc
#    refused ("not supported: use otlp.http").
. "$(dirname "$0")/lib.sh"

RCV="$RELAIS_SRCDIR/tests/integration/otlp_receiver.py"

# start_receiver FILE [ARGS...]: an OTLP receiver recording into FILE; sets
# RCV_PORT.
start_receiver() {
  local f=$1; shift
  RCV_PORT=$(free_port)
  python3 "$RCV" "$RCV_PORT" "$f" "$@" >"$f.out" 2>&1 &
  PIDS+=($!)
  wait_port "$RCV_PORT"
}

# spans FILE: one line per exported span: "traceId spanId parent kind name
# status |key=value|key=value|..." (parent "-" for a root, status 0 or 2).
spans() {
  python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    doc = json.loads(line)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                attrs = ""
                for a in s.get("attributes", []):
                    v = a["value"]
                    if "arrayValue" in v:
                        v = ",".join(x.get("stringValue", "") for x in v["arrayValue"]["values"])
                    else:
                        v = v.get("stringValue", v.get("intValue"))
                    attrs += "|%s=%s" % (a["key"], v)
                print(s["traceId"], s["spanId"], s.get("parentSpanId", "-"), s["kind"],
                      s["name"], s.get("status", {}).get("code", 0),
                      "ts=" + s.get("traceState", "-"), attrs + "|")
EOF
}

# resource FILE: the first export's resource attributes, "key=value" lines.
resource() {
  python3 - "$1" <<'EOF'
import json, sys
doc = json.loads(open(sys.argv[1]).readline())
for a in doc["resourceSpans"][0]["resource"]["attributes"]:
    print("%s=%s" % (a["key"], a["value"].get("stringValue")))
EOF
}

# wait_spans FILE REGEX [SECONDS]: waits until a span line matches.
wait_spans() {
  local i
  for ((i = 0; i < ${3:-5} * 10; i++)); do
    spans "$1" 2>/dev/null | grep -Eq -- "$2" && return 0
    sleep 0.1
  done
  return 1
}

# tp_of OUTPUT: the traceparent value whoami echoed.
tp_of() { printf '%s\n' "$1" | tr -d '\r' | sed -n 's/^[Tt]raceparent: //p' | head -1; }

start_whoami w1; P1=$WHOAMI_PORT
DEAD=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r1: {rule: "Host(\`a.test\`)", service: s1}
    dead: {rule: "Host(\`dead.test\`)", service: dead}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
    dead: {loadBalancer: {servers: [{url: "http://127.0.0.1:$DEAD"}]}}
EOF

# --- A: sampleRate 1 ---------------------------------------------------
start_receiver "$T/a.jsonl"; RA=$RCV_PORT
A=$(free_port)
static_config "$T/a.yaml" "$A" "$T/dyn.yaml" "tracing:
  serviceName: edge
  resourceAttributes: {deployment.environment: test}
  capturedRequestHeaders: [X-Test]
  safeQueryParams: [keep]
  flushInterval: 100ms
  otlp:
    http:
      endpoint: http://127.0.0.1:$RA/v1/traces
      headers: {X-Auth: secret}"
start_relais "$T/a.yaml" "$A"
APID=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5

out=$(curl -s -H 'Host: a.test' -H 'X-Test: hello' "http://127.0.0.1:$A/p?keep=1&secret=2")
tp=$(tp_of "$out")
like "the server received a traceparent (new trace, sampled)" '^00-[0-9a-f]{32}-[0-9a-f]{16}-01$' "$tp"
TID=$(echo "$tp" | cut -d- -f2); PID_C=$(echo "$tp" | cut -d- -f3)
ok "its spans are exported" wait_spans "$T/a.jsonl" "^$TID .* 2 EntryPoint "
sp=$(spans "$T/a.jsonl" | grep "^$TID ")
client=$(echo "$sp" | awk '$4 == 3')
server=$(echo "$sp" | awk '$4 == 2')
is "one SERVER and one CLIENT span in the trace" "1 1" \
  "$(echo "$server" | grep -c .) $(echo "$client" | grep -c .)"
is "the CLIENT span's id is the traceparent's parent id" "$PID_C" "$(echo "$client" | awk '{print $2}')"
is "the CLIENT span's parent is the SERVER span" "$(echo "$server" | awk '{print $2}')" \
  "$(echo "$client" | awk '{print $3}')"
is "the SERVER span is a root, not ERROR" "- 0" "$(echo "$server" | awk '{print $3, $6}')"
for a in 'entry_point=web' 'http.request.method=GET' 'url.path=/p' 'url.scheme=http' \
  'server.address=a.test' 'client.address=127.0.0.1' 'traefik.router.name=r1@file' \
  'http.route=Host(`a.test`)' 'traefik.service.name=s1@file' 'http.response.status_code=200' \
  'network.protocol.version=1.1' 'user_agent.original=curl/'; do
  ok "SERVER attribute $a" grep -qF "|$a" <<<"$server"
done
like "SERVER url.query: unsafe values redacted, safe params kept" \
  '\|url.query=keep=1&secret=REDACTED\|' "$server"
like "SERVER: the captured request header" '\|http.request.header.x-test=hello\|' "$server"
like "CLIENT attributes: the server URL (query redacted), address, port, status" \
  "\\|url.full=http://127.0.0.1:$P1/p\\?keep=1&secret=REDACTED\\|.*\\|server.address=127.0.0.1\\|server.port=$P1\\|.*http.response.status_code=200\\|" \
  "$client"
res=$(resource "$T/a.jsonl")
like "the resource has serviceName" '(^|\n)service.name=edge' "$res"
like "the resource has the resourceAttributes" 'deployment.environment=test' "$res"

# incoming sampled traceparent + tracestate
IN_T=4bf92f3577b34da6a3ce929d0e0e4736; IN_P=00f067aa0ba902b7
out=$(curl -s -H 'Host: a.test' -H "traceparent: 00-$IN_T-$IN_P-01" \
  -H 'tracestate: vendor=abc,other=1' "http://127.0.0.1:$A/in")
tp=$(tp_of "$out")
like "an incoming sampled trace is continued (same trace id, new parent, sampled)" \
  "^00-$IN_T-[0-9a-f]{16}-01\$" "$tp"
ok "the new parent id is not the incoming one" test "$(echo "$tp" | cut -d- -f3)" != "$IN_P"
like "tracestate is forwarded unchanged" '[Tt]racestate: vendor=abc,other=1' "$out"
ok "its spans are exported" wait_spans "$T/a.jsonl" "^$IN_T .* 2 EntryPoint "
sp=$(spans "$T/a.jsonl" | grep "^$IN_T ")
server=$(echo "$sp" | awk '$4 == 2'); client=$(echo "$sp" | awk '$4 == 3')
is "the SERVER span's parent is the incoming parent id" "$IN_P" "$(echo "$server" | awk '{print $3}')"
is "the CLIENT span is the SERVER span's child and the server's parent" \
  "$(echo "$server" | awk '{print $2}') $(echo "$tp" | cut -d- -f3)" \
  "$(echo "$client" | awk '{print $3, $2}')"
like "the spans carry the tracestate" 'ts=vendor=abc,other=1' "$server"

# incoming unsampled traceparent
UN_T=5bf92f3577b34da6a3ce929d0e0e4737
out=$(curl -s -H 'Host: a.test' -H "traceparent: 00-$UN_T-$IN_P-00" "http://127.0.0.1:$A/un")
like "an incoming unsampled trace is followed (flags 00, same trace id)" \
  "^00-$UN_T-[0-9a-f]{16}-00\$" "$(tp_of "$out")"

# an invalid incoming traceparent starts a new trace; its tracestate goes
out=$(curl -s -H 'Host: a.test' -H "traceparent: 00-${IN_T^^}-$IN_P-01" \
  -H 'tracestate: stale=1' "http://127.0.0.1:$A/bad")
tp=$(tp_of "$out")
like "an invalid traceparent (uppercase) starts a new trace" '^00-[0-9a-f]{32}-[0-9a-f]{16}-01$' "$tp"
ok "... with another trace id, and no tracestate forwarded" \
  test "$(echo "$tp" | cut -d- -f2)" != "$IN_T" -a -z "$(echo "$out" | grep -i '^tracestate')"

# 404 and 502
is "no router: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: none.test' "http://127.0.0.1:$A/nope404")"
is "dead server: 502" 502 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: dead.test' "http://127.0.0.1:$A/dead502")"
ok "the 404 and 502 spans are exported" wait_spans "$T/a.jsonl" 'url.path=/dead502\|'
sleep 0.3
all=$(spans "$T/a.jsonl")
s404=$(echo "$all" | grep 'url.path=/nope404|')
t404=$(echo "$s404" | awk '{print $1}')
like "404: a SERVER span, status 404, not ERROR" '^[0-9a-f]+ [0-9a-f]+ - 2 EntryPoint 0 .*http.response.status_code=404\|' "$s404"
is "404: no CLIENT span" "" "$(echo "$all" | awk -v t="$t404" '$1 == t && $4 == 3')"
s502=$(echo "$all" | grep 'url.path=/dead502|')
t502=$(echo "$s502" | awk '{print $1}')
like "502: the SERVER span is ERROR with status 502" ' 2 EntryPoint 2 .*http.response.status_code=502\|' "$s502"
like "502: the CLIENT span (connection refused) is ERROR" "^$t502 [0-9a-f]+ [0-9a-f]+ 3 ReverseProxy 2 .*url.full=http://127.0.0.1:$DEAD/dead502\\|" \
  "$(echo "$all" | awk -v t="$t502" '$1 == t && $4 == 3')"
is "the unsampled trace exported nothing" "" "$(echo "$all" | grep "^$UN_T ")"
is "every export was valid JSON, answered 200" "200" "$(sort -u "$T/a.jsonl.count")"
is "exports carry Content-Type and otlp.http.headers" "application/json secret" \
  "$(sort -u "$T/a.jsonl.headers")"
stop_relais_clean "$APID"

# --- B: sampleRate 0.5, receiver 503 twice first ------------------------
start_receiver "$T/b.jsonl" --fail 2; RB=$RCV_PORT
B=$(free_port)
static_config "$T/b.yaml" "$B" "$T/dyn.yaml" "tracing:
  sampleRate: 0.5
  flushInterval: 100ms
  otlp: {http: {endpoint: http://127.0.0.1:$RB/v1/traces}}"
start_relais "$T/b.yaml" "$B"
BPID=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5
flags=$(python3 - "$B" <<'EOF'
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
n = {"01": 0, "00": 0, "bad": 0}
t0 = time.time()
for i in range(400):
    if time.time() - t0 > 30: break
    c.request("GET", "/s%d" % i, headers={"Host": "a.test"})
    r = c.getresponse(); body = r.read().decode()
    tp = [l.split(": ", 1)[1].strip() for l in body.splitlines() if l.lower().startswith("traceparent:")]
    f = tp[0].split("-")[3] if tp else "bad"
    n[f if f in n else "bad"] += 1
print(n["01"], n["00"], n["bad"])
EOF
)
read -r sampled unsampled badtp <<<"$flags"
ok "sampleRate 0.5: 150 to 250 of 400 forwarded as sampled ($sampled)" test "${sampled:-0}" -ge 150 -a "${sampled:-0}" -le 250
is "every request carried a traceparent" "400 0" "$((sampled + unsampled)) $badtp"
for _ in $(seq 1 80); do
  n=$(spans "$T/b.jsonl" 2>/dev/null | awk '$4 == 2' | wc -l)
  [ "$n" -ge "$sampled" ] && break
  sleep 0.1
done
is "exactly the sampled traces are exported (SERVER spans)" "$sampled" \
  "$(spans "$T/b.jsonl" | awk '$4 == 2 {print $1}' | sort -u | wc -l)"
is "the receiver answered 503, 503, then 200 (retried)" "503 503 200" \
  "$(head -3 "$T/b.jsonl.count" | tr '\n' ' ' | sed 's/ $//')"
stop_relais_clean "$BPID"

# --- C: sampleRate 0 ------------------------------------------------------
start_receiver "$T/c.jsonl"; RC=$RCV_PORT
C=$(free_port)
static_config "$T/c.yaml" "$C" "$T/dyn.yaml" "tracing:
  sampleRate: 0
  flushInterval: 100ms
  otlp: {http: {endpoint: http://127.0.0.1:$RC/v1/traces}}"
start_relais "$T/c.yaml" "$C"
CPID=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5
tp=$(tp_of "$(curl -s -H 'Host: a.test' "http://127.0.0.1:$C/zero")")
like "sampleRate 0: a traceparent is still forwarded (new trace, flags 00)" '^00-[0-9a-f]{32}-[0-9a-f]{16}-00$' "$tp"
out=$(curl -s -H 'Host: a.test' -H "traceparent: 00-$IN_T-$IN_P-01" "http://127.0.0.1:$C/zero2")
like "sampleRate 0: an incoming sampled parent is still followed (parent-based)" \
  "^00-$IN_T-[0-9a-f]{16}-01\$" "$(tp_of "$out")"
ok "... and that trace is exported" wait_spans "$T/c.jsonl" "^$IN_T "
is "nothing else is exported" "" "$(spans "$T/c.jsonl" | grep -v "^$IN_T ")"
stop_relais_clean "$CPID"

# --- D: a dead receiver -------------------------------------------------
RD=$(free_port)
D=$(free_port)
static_config "$T/d.yaml" "$D" "$T/dyn.yaml" "tracing:
  queueSize: 64
  batchSize: 16
  maxRetries: 1
  flushInterval: 50ms
  otlp: {http: {endpoint: http://127.0.0.1:$RD/v1/traces}}"
start_relais "$T/d.yaml" "$D"
DPID=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5
before=$(grep -c 'span(s) dropped' "$T/relais.log")
res=$(python3 - "$D" <<'EOF'
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
lat, bad = [], 0
t0 = time.time()
while time.time() - t0 < 3 and len(lat) < 3000:
    s = time.time()
    c.request("GET", "/d", headers={"Host": "a.test"})
    r = c.getresponse(); r.read()
    lat.append(time.time() - s)
    if r.status != 200: bad += 1
    time.sleep(0.002)
lat.sort()
print(len(lat), bad, "%.4f" % lat[len(lat) // 2], "%.4f" % lat[-1], "%.1f" % (time.time() - t0))
EOF
)
read -r nreq nbad p50 pmax secs <<<"$res"
sleep 1.2
after=$(grep -c 'span(s) dropped' "$T/relais.log")
is "dead receiver: every request answered 200 ($nreq requests)" 0 "$nbad"
ok "dead receiver: latency unaffected (median ${p50}s, max ${pmax}s)" \
  python3 -c "import sys; sys.exit(not ($p50 < 0.02 and $pmax < 0.5))"
ok "dead receiver: drops are logged ($((after - before)) lines in about ${secs}+1.2 s)" \
  test $((after - before)) -ge 1
ok "dead receiver: at most one drop line a second" test $((after - before)) -le 5
stop_relais_clean "$DPID"

# --- --check ------------------------------------------------------------
static_config "$T/bad.yaml" "$(free_port)" "$T/dyn.yaml" "tracing: {sampleRate: 2}"
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
ok "--check refuses sampleRate 2" test "$rc" -ne 0
like "... with its key path" 'tracing.sampleRate: expected a number from 0 to 1' "$out"
static_config "$T/grpc.yaml" "$(free_port)" "$T/dyn.yaml" "tracing: {otlp: {grpc: {endpoint: 127.0.0.1:4317}}}"
out=$("$RELAIS" --config "$T/grpc.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
ok "--check refuses otlp.grpc" test "$rc" -ne 0
like "... saying to use otlp.http" 'tracing.otlp.grpc: not supported: use otlp.http' "$out"
static_config "$T/good.yaml" "$(free_port)" "$T/dyn.yaml" "tracing: {sampleRate: 0.1, otlp: {http: {endpoint: https://127.0.0.1:4318/v1/traces, tls: {insecureSkipVerify: true}}}}"
out=$("$RELAIS" --config "$T/good.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check accepts a good tracing section" 0 "$rc"
t_done
