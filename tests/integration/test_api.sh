#!/usr/bin/env bash
# test_api.sh — the API (Traefik's /api endpoints), black box:
#
#  - where it answers: with api.insecure only on entry point traefik (a
#    router without entryPoints is not served there: "traefik" is never a
#    default entry point); with `api: {}` nowhere until a router uses
#    api@internal, then with that router's middlewares (basicAuth: 401
#    without credentials);
#  - what it says, compared as parsed JSON with what Traefik's API says
#    of the same objects: routers (rule, service, middlewares, status,
#    using, error list of a disabled one), services (type, usedBy,
#    serverStatus UP then DOWN after a failed health check), middlewares
#    (type, usedBy), TCP and UDP objects, entry points, overview counts,
#    version (= relais --version);
#  - Traefik's query: status, search, serviceName, middlewareName filters,
#    per_page / page with X-Next-Page, 400 on a page past the end, 404 with
#    {"message"} for a missing object, %40 in a name, 405 for POST;
#  - secrets: basicAuth users, a plugin option called password and a TLS
#    key are "xxxx" everywhere in the API, and no secret reaches the log
#    (DEBUG) even when a request fails authentication;
#  - paths: ../ and %2e%2e under /dashboard and /api never read a file;
#  - a reload shows the new configuration.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "Bail out! python3 missing"; exit 1; }
start_whoami w1; P1=$WHOAMI_PORT
DEAD=$(free_port)
WP=$(free_port); TP=$(free_port); UP=$(free_port); SP=$(free_port)

# a bcrypt-free htpasswd line (apr1) for user "admin", password "s3cret-pw"
HASH=$(openssl passwd -apr1 's3cret-pw')
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    app: {rule: "Host(\`app.test\`)", service: svc, middlewares: [strip, auth]}
    other: {rule: "PathPrefix(\`/other\`)", service: svc, entryPoints: [web], priority: 5}
    broken: {rule: "Host(\`x\`", service: svc}
    orphan: {rule: "Host(\`o.test\`)", service: nowhere}
    half: {rule: "Host(\`half.test\`)", service: svc, entryPoints: [web, nope]}
  services:
    svc:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
    deadsvc:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$DEAD"}]
        healthCheck: {path: /health, interval: 200ms, timeout: 100ms}
  middlewares:
    strip: {stripPrefix: {prefixes: [/a]}}
    auth: {basicAuth: {users: ["admin:$HASH"]}}
    dig: {digestAuth: {users: ["bob:traefik:0123456789abcdef0123456789abcdef"]}}
tcp:
  routers:
    t1: {rule: "HostSNI(\`db.test\`)", service: tsvc, entryPoints: [tcpep], tls: {}}
  services:
    tsvc: {loadBalancer: {servers: [{address: "127.0.0.1:$P1"}]}}
udp:
  routers:
    u1: {service: usvc, entryPoints: [dns]}
  services:
    usvc: {loadBalancer: {servers: [{address: "127.0.0.1:$P1"}]}}
EOF
cat >"$T/insecure.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$WP"}
  traefik: {address: "127.0.0.1:$TP"}
  tcpep: {address: "127.0.0.1:$(free_port)"}
  dns: {address: "127.0.0.1:$UP/udp"}
api: {insecure: true}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/dyn.yaml", watch: true}
log: {level: DEBUG}
workers: 2
EOF
start_relais "$T/insecure.yaml" "$TP"
wait_log "configuration [0-9]+ applied" 5

api() { curl -s "http://127.0.0.1:$TP$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# jq-like: python expression on the parsed document d
pj() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- where it answers
is "insecure: /api/overview on entry point traefik: 200" 200 "$(code "http://127.0.0.1:$TP/api/overview")"
is "insecure: /api/overview on entry point web: not the API (404)" 404 \
  "$(code "http://127.0.0.1:$WP/api/overview")"
is "insecure: / on traefik redirects to the dashboard (not a user router)" \
  "301 /dashboard/" "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$TP/" | sed 's#http://[^/]*##')"
is "a router without entryPoints is not on traefik" 404 \
  "$(code -H 'Host: app.test' "http://127.0.0.1:$TP/x")"
is "... but on web" 401 "$(code -H 'Host: app.test' "http://127.0.0.1:$WP/x")"

# ---- routers
R=$(api /api/http/routers/app@file)
is "router app@file as Traefik shows it" \
  "{'middlewares': ['strip', 'auth'], 'name': 'app@file', 'provider': 'file', 'rule': 'Host(\`app.test\`)', 'service': 'svc', 'status': 'enabled', 'using': ['tcpep', 'web']}" \
  "$(printf '%s' "$R" | pj 'dict(sorted(d.items()))')"
R=$(api /api/http/routers/broken%40file)
is "%40 in a name; a disabled router: status and its error list" "True" \
  "$(printf '%s' "$R" | pj 'd["status"] == "disabled" and d["error"] == ["http.routers.broken@file.rule: column 9: expected \x27)\x27 or \x27,\x27 after argument"]')"
like "orphan router: missing service named" 'service \\"nowhere@file\\" does not exist' \
  "$(api /api/http/routers/orphan@file)"
is "router list: sorted by name, internal ones included" \
  "['api@internal', 'app@file', 'broken@file', 'dashboard@internal', 'half@file', 'orphan@file', 'other@file']" \
  "$(api /api/http/routers | pj '[r["name"] for r in d]')"
is "internal api@internal router on traefik" "PathPrefix(\`/api\`) ['traefik'] internal" \
  "$(api /api/http/routers/api@internal | pj 'd["rule"]+" "+str(d["entryPoints"])+" "+d["provider"]')"
is "status=disabled filter" "['broken@file', 'orphan@file']" \
  "$(api '/api/http/routers?status=disabled' | pj '[r["name"] for r in d]')"
is "an entry point that does not exist next to a valid one: warning (Traefik)" "True" \
  "$(api /api/http/routers/half@file | pj 'd["status"] == "warning" and d["using"] == ["web"] and d["error"] == ["http.routers.half@file.entryPoints[1]: entry point \"nope\" does not exist"]')"
is "... and it serves there" 200 "$(code -H 'Host: half.test' "http://127.0.0.1:$WP/")"
is "status=warning filter" "['half@file']" \
  "$(api '/api/http/routers?status=warning' | pj '[r["name"] for r in d]')"
is "search filter (name or rule, any case)" "['other@file']" \
  "$(api '/api/http/routers?search=OTHER' | pj '[r["name"] for r in d]')"
is "search in the rule" "['app@file']" \
  "$(api '/api/http/routers?search=app.test' | pj '[r["name"] for r in d]')"
is "serviceName filter" "['app@file', 'broken@file', 'half@file', 'other@file']" \
  "$(api '/api/http/routers?serviceName=svc@file' | pj '[r["name"] for r in d]')"
is "middlewareName filter" "['app@file']" \
  "$(api '/api/http/routers?middlewareName=auth' | pj '[r["name"] for r in d]')"
curl -s -D "$T/h" -o "$T/b" "http://127.0.0.1:$TP/api/http/routers?per_page=2&page=2"
is "per_page=2 page=2: the 3rd and 4th" "['broken@file', 'dashboard@internal']" \
  "$(pj '[r["name"] for r in d]' <"$T/b")"
is "X-Next-Page: 3" "3" "$(grep -i '^x-next-page:' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
curl -s -D "$T/h" -o /dev/null "http://127.0.0.1:$TP/api/http/routers?per_page=2&page=4"
is "last page: X-Next-Page 1" "1" "$(grep -i '^x-next-page:' "$T/h" | tr -d '\r' | cut -d' ' -f2)"
is "page past the end: 400" 400 "$(code "http://127.0.0.1:$TP/api/http/routers?per_page=2&page=9")"
is "... Traefik's message" "invalid request: page: 9, per_page: 2" \
  "$(api '/api/http/routers?per_page=2&page=9' | pj 'd["message"]')"
is "per_page=0: 400" 400 "$(code "http://127.0.0.1:$TP/api/http/routers?per_page=0")"
is "missing router: 404" 404 "$(code "http://127.0.0.1:$TP/api/http/routers/nope@file")"
is "... with a message" "router not found: nope@file" "$(api /api/http/routers/nope@file | pj 'd["message"]')"
is "POST: 405" 405 "$(code -X POST "http://127.0.0.1:$TP/api/http/routers")"
is "unknown API path: 404" 404 "$(code "http://127.0.0.1:$TP/api/nothing/here")"
is "Content-Type application/json" "application/json" \
  "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$TP/api/overview")"

# ---- services
S=$(api /api/http/services/svc@file)
is "service svc@file" \
  "{'loadBalancer': {'servers': [{'url': 'http://127.0.0.1:$P1'}]}, 'name': 'svc@file', 'provider': 'file', 'serverStatus': {'http://127.0.0.1:$P1': 'UP'}, 'status': 'enabled', 'type': 'loadbalancer', 'usedBy': ['app@file', 'other@file', 'broken@file', 'half@file']}" \
  "$(printf '%s' "$S" | pj 'dict(sorted(d.items()))')"
for _ in $(seq 1 40); do
  [ "$(api /api/http/services/deadsvc@file | pj 'd["serverStatus"]["http://127.0.0.1:'$DEAD'"]')" = DOWN ] && break
  sleep 0.1
done
is "a server failing its health check: DOWN" DOWN \
  "$(api /api/http/services/deadsvc@file | pj 'd["serverStatus"]["http://127.0.0.1:'$DEAD'"]')"
is "services list has serverStatus too" DOWN \
  "$(api /api/http/services | pj '[s for s in d if s["name"]=="deadsvc@file"][0]["serverStatus"]["http://127.0.0.1:'$DEAD'"]')"
is "internal services listed" "['api@internal', 'dashboard@internal']" \
  "$(api '/api/http/services?search=internal' | pj '[s["name"] for s in d]')"

# ---- middlewares and secrets
is "middleware strip: type and usedBy" "stripprefix ['app@file'] {'prefixes': ['/a']}" \
  "$(api /api/http/middlewares/strip@file | pj 'd["type"]+" "+str(d["usedBy"])+" "+str(d["stripPrefix"])')"
is "basicAuth users redacted" "{'users': ['xxxx']}" \
  "$(api /api/http/middlewares/auth@file | pj 'd["basicAuth"]')"
is "digestAuth users redacted" "{'users': ['xxxx']}" \
  "$(api /api/http/middlewares/dig@file | pj 'd["digestAuth"]')"
RAW=$(api /api/rawdata)
is "rawdata: sections" "['middlewares', 'routers', 'services', 'tcpRouters', 'tcpServices', 'udpRouters', 'udpServices']" \
  "$(printf '%s' "$RAW" | pj 'sorted(d.keys())')"
is "rawdata: the hash appears nowhere" "" "$(printf '%s' "$RAW" | grep -F -- "${HASH#\$apr1\$}")"
is "rawdata: digest HA1 appears nowhere" "" "$(printf '%s' "$RAW" | grep -F 0123456789abcdef)"
is "rawdata: server health" DOWN \
  "$(printf '%s' "$RAW" | pj 'd["services"]["deadsvc@file"]["serverStatus"]["http://127.0.0.1:'$DEAD'"]')"

# ---- tcp, udp, entry points, overview, version
is "tcp router: tls options default, using" "{'options': 'default'} ['tcpep'] enabled" \
  "$(api /api/tcp/routers/t1@file | pj 'str(d["tls"])+" "+str(d["using"])+" "+d["status"]')"
is "tcp service usedBy" "['t1@file']" "$(api /api/tcp/services/tsvc@file | pj 'd["usedBy"]')"
is "udp router and service" "['dns'] ['u1@file']" \
  "$(api /api/udp/routers | pj 'd[0]["using"]') $(api /api/udp/services | pj 'd[0]["usedBy"]')"
is "udp middlewares: an empty list" "[]" "$(api /api/udp/middlewares)"
is "entry points: names and addresses" \
  "[('dns', '127.0.0.1:$UP/udp'), ('tcpep', '$(sed -n 's/.*tcpep: {address: "\(.*\)"}/\1/p' "$T/insecure.yaml")'), ('traefik', '127.0.0.1:$TP'), ('web', '127.0.0.1:$WP')]" \
  "$(api /api/entrypoints | pj '[(e["name"], e["address"]) for e in d]')"
is "one entry point" "127.0.0.1:$WP" "$(api /api/entrypoints/web | pj 'd["address"]')"
is "overview: http counts" \
  "{'middlewares': {'errors': 0, 'total': 3, 'warnings': 0}, 'routers': {'errors': 2, 'total': 7, 'warnings': 1}, 'services': {'errors': 0, 'total': 4, 'warnings': 0}}" \
  "$(api /api/overview | pj 'json.loads(json.dumps(d["http"], sort_keys=True))')"
is "overview: tcp, udp, providers" "1 1 ['file']" \
  "$(api /api/overview | pj 'str(d["tcp"]["routers"]["total"])+" "+str(d["udp"]["services"]["total"])+" "+str(d["providers"])')"
VER=$("$RELAIS" --version | sed -n 's/^relais \([^ ]*\) (\(.*\))$/\1 \2/p')
is "version = relais --version" "$VER" "$(api /api/version | pj 'd["Version"]+" "+d["Codename"]')"

# ---- paths never reach the file system
for p in "/dashboard/../../../../etc/passwd" "/dashboard/%2e%2e/%2e%2e/%2e%2e/etc/passwd" \
         "/api/../../etc/passwd" "/dashboard/..%2f..%2f..%2fetc%2fpasswd" "/api/http/routers/..%2f..%2fetc%2fpasswd"; do
  B=$(curl -s --path-as-is "http://127.0.0.1:$TP$p")
  is "no file behind $p" "" "$(printf '%s' "$B" | grep -c 'root:' | grep -v '^0$')"
done

# ---- reload
sed -i 's/other: {rule: "PathPrefix(`\/other`)"/other: {rule: "PathPrefix(`\/changed`)"/' "$T/dyn.yaml"
for _ in $(seq 1 50); do
  [ "$(api /api/http/routers/other@file | pj 'd["rule"]')" = 'PathPrefix(`/changed`)' ] && break
  sleep 0.1
done
is "a reload shows in the API" 'PathPrefix(`/changed`)' "$(api /api/http/routers/other@file | pj 'd["rule"]')"

# ---- secrets never in the log, even at DEBUG after failed logins
curl -s -o /dev/null -u 'admin:wrong-pw' -H 'Host: app.test' "http://127.0.0.1:$WP/a"
curl -s -o /dev/null -u 'admin:s3cret-pw' -H 'Host: app.test' "http://127.0.0.1:$WP/a"
is "the password never in the log" 0 "$(grep -c -e 's3cret-pw' -e 'wrong-pw' "$T/relais.log")"
is "the hash never in the log" 0 "$(grep -c -F -- "${HASH#\$apr1\$}" "$T/relais.log")"
stop_relais_clean

# ---- secure mode: api: {} and a router with basicAuth in front
cat >"$T/dyn2.yaml" <<EOF
http:
  routers:
    dash:
      rule: "Host(\`admin.test\`) && (PathPrefix(\`/api\`) || PathPrefix(\`/dashboard\`))"
      service: api@internal
      middlewares: [auth]
    app: {rule: "PathPrefix(\`/\`)", service: svc}
  services:
    svc: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
  middlewares:
    auth: {basicAuth: {users: ["admin:$HASH"]}}
EOF
cat >"$T/secure.yaml" <<EOF
entryPoints:
  websecure: {address: "127.0.0.1:$SP"}
api: {}
providers:
  providersThrottleDuration: 0s
  file: {filename: "$T/dyn2.yaml"}
log: {level: INFO}
workers: 1
EOF
: >"$T/relais.log"
start_relais "$T/secure.yaml" "$SP"
wait_log "configuration [0-9]+ applied" 5
is "secure: no entry point traefik was created" 0 "$(grep -c 'entry point traefik created' "$T/relais.log")"
is "secure: /api without the router's host goes to the app, not the API" \
  "whoami" "$(curl -s "http://127.0.0.1:$SP/api/overview" | grep -o -m1 '^Hostname' | sed 's/Hostname/whoami/')"
is "secure: the API router asks for credentials (401)" 401 \
  "$(code -H 'Host: admin.test' "http://127.0.0.1:$SP/api/overview")"
is "secure: with them: 200" 200 \
  "$(code -u 'admin:s3cret-pw' -H 'Host: admin.test' "http://127.0.0.1:$SP/api/overview")"
is "secure: the API lists its own router" "enabled" \
  "$(curl -s -u 'admin:s3cret-pw' -H 'Host: admin.test' "http://127.0.0.1:$SP/api/http/routers/dash@file" | pj 'd["status"]')"
is "secure: api@internal usedBy the router" "['dash@file']" \
  "$(curl -s -u 'admin:s3cret-pw' -H 'Host: admin.test' "http://127.0.0.1:$SP/api/http/services/api@internal" | pj 'd["usedBy"]')"
stop_relais_clean

# ---- api@internal without api configured does not exist
cat >"$T/noapi.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$(free_port)"}
providers:
  file: {filename: "$T/dyn2.yaml"}
EOF
"$RELAIS" --check --config "$T/noapi.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" >"$T/check.out" 2>&1
cat >"$T/default-ep.yaml" <<EOF
entryPoints:
  web: {address: "127.0.0.1:$(free_port)"}
api: {insecure: true}
providers:
  file: {filename: "$T/dyn2.yaml"}
EOF
"$RELAIS" --check --config "$T/default-ep.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" >"$T/check2.out" 2>&1
like "api.insecure without an entry point traefik: Traefik's one is created on :8080" \
  'entry point traefik created on :8080' "$(cat "$T/check2.out")"
like "... and the exposure is logged as a warning" \
  'WRN .*api.insecure: the API and the dashboard answer anyone who reaches entry point traefik \(:8080\)' \
  "$(cat "$T/check2.out")"
like "without api, a router to api@internal is an error" 'service "api@internal" does not exist' \
  "$(cat "$T/check.out")"

t_done
