#!/usr/bin/env bash
# The http provider against a real HTTP server (python3 -m http.server):
# routes from the endpoint, changes followed, the endpoint going away keeps
# the last configuration serving, updates resume when it is back; a broken
# document keeps the previous one; bad options are refused by --check.
. "$(dirname "$0")/lib.sh"

start_whoami w1; P1=$WHOAMI_PORT
start_whoami w2; P2=$WHOAMI_PORT
WWW=$T/www
mkdir -p "$WWW"
HP=$(free_port)
RP=$(free_port)

# start_www: serves $WWW on 127.0.0.1:$HP (a real HTTP server)
start_www() {
  python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$HP" >"$T/www.log" 2>&1 &
  WWW_PID=$!
  PIDS+=($WWW_PID)
  wait_port "$HP"
}
# publish HOST PORT: the endpoint now routes HOST to the whoami on PORT
publish() {
  cat >"$WWW/.cfg.tmp" <<EOF
{"http": {"routers": {"r": {"rule": "Host(\`$1\`)", "service": "s"}},
          "services": {"s": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:$2"}]}}}}}
EOF
  mv "$WWW/.cfg.tmp" "$WWW/config.json"
}
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$RP/"; }
name() { curl -s -D- -o /dev/null -H "Host: $1" "http://127.0.0.1:$RP/" | tr -d '\r' | sed -n 's/^X-Whoami-Name: //p'; }
# until_eq EXPECTED CMD...: waits (5 s at most) until CMD prints EXPECTED
until_eq() {
  local want=$1 i; shift
  for i in $(seq 1 100); do [ "$("$@")" = "$want" ] && return 0; sleep 0.05; done
  return 1
}

publish one.test "$P1"
start_www
cat >"$T/relais.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  providersThrottleDuration: 0s
  http:
    endpoint: "http://127.0.0.1:$HP/config.json"
    pollInterval: 200ms
    pollTimeout: 1s
    headers:
      X-Relais-Test: yes-it-is
log:
  level: DEBUG
EOF
start_relais "$T/relais.yaml" "$RP"
ok "first configuration from the endpoint applied" wait_log "configuration 2 applied"
is "route from the endpoint" "w1" "$(name one.test)"
ok "the endpoint is polled" grep -q "GET /config.json" "$T/www.log"

publish two.test "$P2"
ok "a change at the endpoint is followed" until_eq w2 name two.test
is "the old route is gone" "404" "$(code one.test)"
n_applied=$(grep -c 'configuration .* applied' "$T/relais.log")
sleep 0.7
is "an unchanged body is not applied again" "$n_applied" "$(grep -c 'configuration .* applied' "$T/relais.log")"

# the endpoint goes away: the last configuration keeps serving
kill "$WWW_PID"; wait "$WWW_PID" 2>/dev/null
ok "the failure is logged" wait_log "provider http.*127.0.0.1:$HP/config.json: .*last configuration keeps serving"
is "last configuration keeps serving" "w2" "$(name two.test)"
publish one.test "$P1"
start_www
ok "updates resume when the endpoint is back" until_eq w1 name one.test

# a broken document: reported, previous configuration kept
printf '{"http": {"routers": ' >"$WWW/.cfg.tmp"; mv "$WWW/.cfg.tmp" "$WWW/config.json"
ok "a broken document is reported with its source" wait_log "127.0.0.1:$HP/config.json:[0-9]+:[0-9]+: .*previous configuration kept"
is "previous configuration still serves" "w1" "$(name one.test)"
publish two.test "$P2"
ok "a fixed document is applied" until_eq w2 name two.test

# options are validated
cat >"$T/bad.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  http:
    pollInterval: soon
EOF
out=$("$RELAIS" --config "$T/bad.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check refuses bad http provider options" "1" "$rc"
like "missing endpoint named" 'providers.http.endpoint: missing' "$out"
like "bad duration named" 'providers.http.pollInterval: expected a duration' "$out"
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
is "relais exits 0" "0" "$?"
t_done
