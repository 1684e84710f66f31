#!/usr/bin/env bash
# The command line: --version, --help, --check (file, key path, reason),
# --list-plugins, plugin refusals at start, SIGHUP and broken reloads.
. "$(dirname "$0")/lib.sh"

like "--version names version and codename" '^relais [0-9]+\.[0-9]+\.[0-9]+ \([a-z]+\)$' "$("$RELAIS" --version)"
like "--help shows the usage" '^Usage: relais' "$("$RELAIS" --help | head -1)"
"$RELAIS" --bogus >/dev/null 2>&1; is "unknown option: exit 2" "2" "$?"

start_whoami w1; P1=$WHOAMI_PORT
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r1:
      rule: "Host(\`one.test\`)"
      service: s1
  services:
    s1:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"

out=$("$RELAIS" --config "$T/relais.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on a valid configuration: exit 0" "0" "$rc"
like "--check says so" 'configuration OK' "$out"

# static configuration errors name the file, the key path and the reason
cat >"$T/bad-static.yaml" <<EOF
entryPoints:
  web:
    address: "localhost"
workers: many
log:
  level: LOUD
EOF
out=$("$RELAIS" --config "$T/bad-static.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on a bad static file: exit 1" "1" "$rc"
like "bad address reported with its key path" "$T/bad-static.yaml: entryPoints.web.address: expected an address" "$out"
like "bad type reported with its key path" "$T/bad-static.yaml: workers: expected an integer" "$out"
like "bad log level reported" "$T/bad-static.yaml: log.level: expected one of DEBUG, INFO, WARN, ERROR" "$out"

printf 'entryPoints:\n  web:\n    address: ":80"\n  - oops\n' >"$T/syntax.yaml"
out=$("$RELAIS" --config "$T/syntax.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on a YAML syntax error: exit 1" "1" "$rc"
like "syntax error reported with file, line and column" "$T/syntax.yaml:4:[0-9]+: " "$out"

# dynamic configuration errors
cat >"$T/bad-dyn.yaml" <<EOF
http:
  routers:
    r1:
      rule: "Host(\`one.test\`) &&"
      service: s1
  services:
    s1:
      loadBalancer:
        servers: [{url: "ftp://127.0.0.1:1"}]
EOF
static_config "$T/bad-dyn-static.yaml" "$RP" "$T/bad-dyn.yaml"
out=$("$RELAIS" --config "$T/bad-dyn-static.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on a bad dynamic file: exit 1" "1" "$rc"
like "bad rule reported with file, router, key path and column" "$T/bad-dyn.yaml: router r1@file disabled"': http.routers.r1@file.rule: column 2[0-9]: ' "$out"
like "bad server URL reported with its key path" 'http.services.s1@file.loadBalancer.servers\[0\].url: expected a URL' "$out"

printf 'http:\n  routers:\n    r1: [\n' >"$T/syntax-dyn.yaml"
static_config "$T/syntax-dyn-static.yaml" "$RP" "$T/syntax-dyn.yaml"
out=$("$RELAIS" --config "$T/syntax-dyn-static.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on a dynamic YAML syntax error: exit 1" "1" "$rc"
like "dynamic syntax error names file and line" "$T/syntax-dyn.yaml:[0-9]+:[0-9]+: " "$out"

# provider options are validated
cat >"$T/bad-provider.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP"
providers:
  file:
    watch: true
EOF
out=$("$RELAIS" --config "$T/bad-provider.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check on bad provider options: exit 1" "1" "$rc"
like "provider error names the key path" 'providers.file: either filename or directory must be set' "$out"

# --list-plugins
out=$("$RELAIS" --list-plugins --plugin-dir "$RELAIS_PLUGIN_DIR" 2>/dev/null)
like "--list-plugins shows the file provider" $'\nfile +[0-9.]+ +provider +file +1\\.[0-9]+$' "$out"
like "--list-plugins shows wrr" $'\nwrr +[0-9.]+ +lb +wrr +1\\.[0-9]+$' "$out"

# a plugin directory with refused plugins: relais starts, reports, serves
PD=$T/plugins
mkdir -p "$PD"
ln -s "$RELAIS_PLUGIN_DIR"/*.so "$PD"/
for p in bad_magic major_2 minor_future small_desc no_symbol load_fails small_ops; do
  ln -s "$RELAIS_TEST_PLUGIN_DIR/$p.so" "$PD"/
done
# loaded in name order: this one comes after wrr.so and must be refused
ln -s "$RELAIS_TEST_PLUGIN_DIR/dup_key.so" "$PD/zz_dup_key.so"
PLUGIN_DIR=$PD start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied"
is "relais serves despite refused plugins" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: one.test' http://127.0.0.1:$RP/)"
ok "wrong major refused with both versions" grep -qE "refusing plugin $PD/major_2.so: ABI 2.0, host supports 1.[0-9]+" "$T/relais.log"
ok "newer minor refused with both versions" grep -qE "refusing plugin $PD/minor_future.so: ABI 1.99, host supports 1.[0-9]+" "$T/relais.log"
ok "bad magic refused" grep -q "refusing plugin $PD/bad_magic.so: bad magic" "$T/relais.log"
ok "missing descriptor refused" grep -q "refusing plugin $PD/no_symbol.so" "$T/relais.log"
ok "duplicate config key refused" grep -q "refusing plugin $PD/zz_dup_key.so: lb config key \"WRR\" is already provided" "$T/relais.log"
is "each refused plugin reported once" "8" "$(grep -c 'refusing plugin' "$T/relais.log")"

# a middleware whose plugin is missing (or refused): only the routers
# that use it are off, the others serve
cat >"$T/dyn.yaml.tmp" <<EOF
http:
  routers:
    r1: {rule: "Host(\`one.test\`)", service: s1}
    r2: {rule: "Host(\`fancy.test\`)", service: s1, middlewares: [fancy]}
  middlewares:
    fancy: {fancyAuth: {realm: x}}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:$P1"}]}}
EOF
mv "$T/dyn.yaml.tmp" "$T/dyn.yaml"
ok "a missing middleware plugin is reported with its key path" \
  wait_log 'http.middlewares.fancy@file.fancyAuth: no loaded plugin provides the middleware type "fancyAuth"'
is "the router that needs it is off (404)" "404" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: fancy.test' http://127.0.0.1:$RP/)"
is "the others serve" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: one.test' http://127.0.0.1:$RP/)"

# a broken dynamic file while running: the previous configuration serves
printf 'http:\n  routers:\n    r1: [\n' >"$T/dyn.yaml.tmp"; mv "$T/dyn.yaml.tmp" "$T/dyn.yaml"
ok "broken reload reported with file and line" wait_log "$T/dyn.yaml:[0-9]+:[0-9]+: .*previous configuration kept"
is "previous configuration keeps serving" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: one.test' http://127.0.0.1:$RP/)"
sed 's/one.test/two.test/' >"$T/dyn.yaml.tmp" <<EOF
http:
  routers:
    r1:
      rule: "Host(\`one.test\`)"
      service: s1
  services:
    s1:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
mv "$T/dyn.yaml.tmp" "$T/dyn.yaml"
ok "fixed file applied" wait_log "configuration 4 applied"
is "new route serves" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: two.test' http://127.0.0.1:$RP/)"
is "old route gone" "404" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: one.test' http://127.0.0.1:$RP/)"
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
is "clean exit" "0" "$?"

# a directory of dynamic files: merged, references across files, a new
# file picked up while running
RP3=$(free_port)
mkdir -p "$T/dyn.d"
cat >"$T/dyn.d/10-routers.yaml" <<EOF
http:
  routers:
    d1:
      rule: "Host(\`dir.test\`)"
      service: shared
EOF
cat >"$T/dyn.d/20-services.json" <<EOF
{"http": {"services": {"shared": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:$P1"}]}}}}}
EOF
cat >"$T/dir.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP3"
providers:
  providersThrottleDuration: 0s
  file:
    directory: "$T/dyn.d"
EOF
: >"$T/relais.log"
start_relais "$T/dir.yaml" "$RP3"
wait_log "configuration 2 applied"
is "router in one file, service in another" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: dir.test' http://127.0.0.1:$RP3/)"
cat >"$T/dyn.d/.30-new.yaml.tmp" <<EOF
http:
  routers:
    d2:
      rule: "Host(\`dir2.test\`)"
      service: shared
EOF
mv "$T/dyn.d/.30-new.yaml.tmp" "$T/dyn.d/30-new.yaml"
ok "new file in the directory applied" wait_log "configuration 3 applied"
is "route from the new file" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: dir2.test' http://127.0.0.1:$RP3/)"
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"

# SIGHUP re-reads a provider that does not watch
RP2=$(free_port)
cat >"$T/nowatch.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP2"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/dyn2.yaml"
    watch: false
EOF
sed 's/two.test/three.test/' "$T/dyn.yaml" >"$T/dyn2.yaml"
: >"$T/relais.log"
start_relais "$T/nowatch.yaml" "$RP2"
is "unwatched file served" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: three.test' http://127.0.0.1:$RP2/)"
sed 's/two.test/four.test/' "$T/dyn.yaml" >"$T/dyn2.yaml"
sleep 0.3
is "no watch: change not applied yet" "404" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: four.test' http://127.0.0.1:$RP2/)"
kill -HUP "$RELAIS_PID"
ok "SIGHUP applies the change" wait_log "configuration 3 applied"
is "route after SIGHUP" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: four.test' http://127.0.0.1:$RP2/)"
# two providers of one type under different names; references across
# providers with name@provider
RP6=$(free_port)
cat >"$T/p1.yaml" <<EOF
http:
  routers:
    cross:
      rule: "Host(\`cross.test\`)"
      service: shared@second
EOF
cat >"$T/p2.yaml" <<EOF
http:
  routers:
    own:
      rule: "Host(\`own.test\`)"
      service: shared
  services:
    shared:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$P1"}]
EOF
cat >"$T/two.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP6"
providers:
  providersThrottleDuration: 0s
  file:
    filename: "$T/p1.yaml"
  second:
    type: file
    filename: "$T/p2.yaml"
EOF
: >"$T/relais.log"
start_relais "$T/two.yaml" "$RP6"
wait_log "configuration [0-9]+ applied: 2 routers"
is "router of the second file provider serves" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: own.test' http://127.0.0.1:$RP6/)"
is "reference across providers (shared@second)" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: cross.test' http://127.0.0.1:$RP6/)"
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
printf 'entryPoints:\n  web:\n    address: "127.0.0.1:%s"\nproviders:\n  second:\n    filename: x.yaml\n' "$RP6" >"$T/notype.yaml"
out=$("$RELAIS" --config "$T/notype.yaml" --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "unknown provider without a type: exit 1" "1" "$rc"
like "named with its key path" 'providers.second: no loaded plugin provides the "second" provider' "$out"

# log: filePath and the json format; SIGUSR1 reopens the file (logrotate)
RP7=$(free_port)
cat >"$T/logjson.yaml" <<EOF
entryPoints:
  web:
    address: "127.0.0.1:$RP7"
providers:
  file:
    filename: "$T/p2.yaml"
log:
  level: INFO
  format: json
  filePath: "$T/relais-json.log"
EOF
start_relais "$T/logjson.yaml" "$RP7"
ok "log written to filePath" test -s "$T/relais-json.log"
ok "json log lines" grep -qE '^\{"time":"[0-9T:.-]+Z","level":"info","module":"control","message":"relais [0-9.]+ started' "$T/relais-json.log"
mv "$T/relais-json.log" "$T/relais-json.log.1"
kill -USR1 "$RELAIS_PID"; sleep 0.3
kill -TERM "$RELAIS_PID"; wait "$RELAIS_PID"
ok "SIGUSR1 reopened the log file" grep -q '"message":"stopped"' "$T/relais-json.log"

# Traefik-style flags: a configuration from flags alone, and a flag that
# overrides a key of the file
RP4=$(free_port)
: >"$T/relais.log"
"$RELAIS" --entrypoints.web.address=127.0.0.1:$RP4 --providers.file.filename="$T/dyn2.yaml" \
  --providers.providersThrottleDuration=0s --log.level=DEBUG --plugin-dir "$RELAIS_PLUGIN_DIR" >>"$T/relais.log" 2>&1 &
FP=$!; PIDS+=($FP)
wait_port "$RP4"
is "configuration from flags alone serves" "200" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: four.test' http://127.0.0.1:$RP4/)"
kill -TERM "$FP"; wait "$FP"
RP5=$(free_port)
out=$("$RELAIS" --config "$T/nowatch.yaml" --entryPoints.web.address=127.0.0.1:$RP5 --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "--check with a flag override: exit 0" "0" "$rc"
out=$("$RELAIS" --config "$T/nowatch.yaml" --entryPoints.web.address=nowhere --plugin-dir "$RELAIS_PLUGIN_DIR" --check 2>&1); rc=$?
is "a bad flag value is reported: exit 1" "1" "$rc"
like "the flag's key path is named" 'entryPoints.web.address: expected an address' "$out"
t_done
