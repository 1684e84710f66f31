#!/usr/bin/env bash
# test_accesslog.sh — the access log (accessLog), black box:
#
#  - format json: one line per exchange with Traefik's keys and values
#    (RouterName, ServiceName, ServiceURL, DownstreamStatus, OriginStatus,
#    RequestMethod, RequestPath, RequestHost, ClientHost, entryPointName,
#    Duration in ns, DownstreamContentSize) for a proxied 200, a 404 with
#    no router and a 502 from a dead server; a kept header as
#    request_User-Agent, the others dropped (Traefik's default);
#  - format common with filters.statusCodes ["400-499"]: only the 404, in
#    Traefik's common line shape;
#  - SIGUSR1 after the file was moved (logrotate): the next lines go to a
#    new file of the same name;
#  - a bad accessLog is refused by --check with its key path.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
DEAD=$(free_port)
A=$(free_port); B=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r1: {rule: "Host(\`a.test\`)", service: s1}
    dead: {rule: "Host(\`dead.test\`)", service: dead}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
    dead: {loadBalancer: {servers: [{url: "http://127.0.0.1:$DEAD"}]}}
EOF
cat >"$T/json.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$A"}
providers:
  file: {filename: "$T/dyn.yaml"}
accessLog:
  filePath: "$T/access.json"
  format: json
  fields:
    headers:
      names: {User-Agent: keep}
log: {level: INFO}
workers: 2
EOF
cat >"$T/common.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$B"}
providers:
  file: {filename: "$T/dyn.yaml"}
accessLog:
  filePath: "$T/access.log"
  filters:
    statusCodes: ["400-499"]
log: {level: INFO}
workers: 1
EOF
start_relais "$T/json.yaml" "$A"
JSONPID=$RELAIS_PID
start_relais "$T/common.yaml" "$B"
COMMONPID=$RELAIS_PID
wait_log "configuration [0-9]+ applied: 2 routers" 5

for port in "$A" "$B"; do
  curl -s -o /dev/null -A 'agent/1' -H 'Host: a.test' "http://127.0.0.1:$port/hello?x=1"
  curl -s -o /dev/null -A 'agent/1' -H 'Host: none.test' "http://127.0.0.1:$port/nothing"
  curl -s -o /dev/null -A 'agent/1' -H 'Host: dead.test' "http://127.0.0.1:$port/down"
done
# lines are written off the hot path within ~100 ms
waitlines() { for _ in $(seq 1 60); do [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
ok "json: three lines written" waitlines "$T/access.json" 3

cat >"$T/check.py" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
by = {l.get("RequestHost"): l for l in lines}
ok = by["a.test"]
def show(l, k): return "%s=%r" % (k, l.get(k))
out = []
out.append(" ".join(show(ok, k) for k in ("RouterName", "ServiceName", "DownstreamStatus",
    "OriginStatus", "RequestMethod", "RequestPath", "RequestProtocol", "ClientHost",
    "entryPointName", "request_User-Agent")))
out.append("url=%s" % ok.get("ServiceURL"))
out.append("durations %s %s" % (isinstance(ok.get("Duration"), int) and ok["Duration"] > 0,
                                isinstance(ok.get("OriginDuration"), int)))
out.append("size %s" % (ok.get("DownstreamContentSize", 0) > 0))
out.append("accept dropped %s" % ("request_Accept" not in ok))
nf = by["none.test"]
out.append("%s %s" % (nf.get("DownstreamStatus"), nf.get("RouterName")))
dd = by["dead.test"]
out.append("%s %s" % (dd.get("DownstreamStatus"), dd.get("RouterName")))
print("\n".join(out))
PYEOF
res=$(python3 "$T/check.py" "$T/access.json")
is "json: the proxied request" \
  "RouterName='r1@file' ServiceName='s1@file' DownstreamStatus=200 OriginStatus=200 RequestMethod='GET' RequestPath='/hello?x=1' RequestProtocol='HTTP/1.1' ClientHost='127.0.0.1' entryPointName='web' request_User-Agent='agent/1'" \
  "$(sed -n 1p <<<"$res")"
is "json: ServiceURL" "url=http://127.0.0.1:$P1" "$(sed -n 2p <<<"$res")"
is "json: Duration and OriginDuration are integers (ns)" "durations True True" "$(sed -n 3p <<<"$res")"
is "json: DownstreamContentSize counted" "size True" "$(sed -n 4p <<<"$res")"
is "json: headers not named are dropped" "accept dropped True" "$(sed -n 5p <<<"$res")"
is "json: no router: 404 without RouterName" "404 None" "$(sed -n 6p <<<"$res")"
is "json: dead server: 502 with its router" "502 dead@file" "$(sed -n 7p <<<"$res")"

ok "common: a line written" waitlines "$T/access.log" 1
sleep 0.3
is "common: only the 404 passes the statusCodes filter" "1" "$(wc -l <"$T/access.log")"
like "common: Traefik's line" \
  '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /nothing HTTP/1\.1" 404 [0-9]+ "-" "-" [0-9]+ "-" "-" [0-9]+ms$' \
  "$(cat "$T/access.log")"

# ---- logrotate: move the file, SIGUSR1, the next line lands in a new one
mv "$T/access.json" "$T/access.json.1"
kill -USR1 "$JSONPID"
sleep 0.2
curl -s -o /dev/null -H 'Host: a.test' "http://127.0.0.1:$A/after"
ok "after SIGUSR1 a new file is written" waitlines "$T/access.json" 1
ok "... with the new request" grep -q '"RequestPath":"/after"' "$T/access.json"
is "the moved file kept its 3 lines" "3" "$(wc -l <"$T/access.json.1")"

# ---- a bad accessLog
sed 's/format: json/format: xml/' "$T/json.yaml" >"$T/bad.yaml"
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1)
like "a bad format is named with its key path" "bad.yaml: accessLog.format: expected common or json" "$out"

stop_relais_clean "$JSONPID"
stop_relais_clean "$COMMONPID"
t_done
