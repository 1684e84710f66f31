#!/usr/bin/env bash
# The out-of-tree plugin workflow: install relais into a scratch DESTDIR,
# build sdk/examples/hello with nothing but pkg-config and the installed
# SDK, load it into the installed relais and check its effect.
. "$(dirname "$0")/lib.sh"

DEST=$T/dest
make -s -C "$RELAIS_BUILDDIR" install DESTDIR="$DEST" >"$T/install.log" 2>&1
is "make install DESTDIR succeeds" "0" "$?"
PREFIX=$(sed -n 's/^prefix=//p' "$RELAIS_BUILDDIR/sdk/relais-sdk.pc")
LIBDIR=$(sed -n 's/^libdir=//p' "$RELAIS_BUILDDIR/sdk/relais-sdk.pc" | sed "s|\${exec_prefix}|$PREFIX|;s|\${prefix}|$PREFIX|")
INST_BIN=$DEST$PREFIX/bin/relais
INST_PLUGINS=$DEST$LIBDIR/relais/plugins
ok "relais installed" test -x "$INST_BIN"
ok "SDK header installed" test -f "$DEST$PREFIX/include/relais/plugin.h"
ok "relais-sdk.pc installed" test -f "$DEST$LIBDIR/pkgconfig/relais-sdk.pc"
ok "plugins installed" test -f "$INST_PLUGINS/wrr.so" -a -f "$INST_PLUGINS/file.so"

cp -r "$RELAIS_SRCDIR/sdk/examples/hello" "$T/hello"
chmod -R u+w "$T/hello"
export PKG_CONFIG_PATH=$DEST$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
make -s -C "$T/hello" >"$T/hello-build.log" 2>&1
is "hello builds out of tree with pkg-config only" "0" "$?"
sed 's/^/# /' "$T/hello-build.log"
syms=$(nm -D --defined-only "$T/hello/hello.so" | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')
is "hello exports only its descriptor" "relais_plugin_descriptor " "$syms"

cp "$T/hello/hello.so" "$INST_PLUGINS/"
out=$("$INST_BIN" --list-plugins --plugin-dir "$INST_PLUGINS" 2>/dev/null)
like "installed relais lists hello" '^hello +[0-9.]+ +middleware +hello +1\.[0-9]+$' "$out"

start_whoami w1
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r:
      rule: "PathPrefix(\`/\`)"
      service: s
      middlewares: [hi]
  middlewares:
    hi:
      hello:
        value: there
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:$WHOAMI_PORT"}]
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
RELAIS=$INST_BIN PLUGIN_DIR=$INST_PLUGINS start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied"
resp=$(curl -s -D- http://127.0.0.1:$RP/ | tr -d '\r')
like "hello adds its response header" '^X-Hello: there$' "$(sed -n '1,/^$/p' <<<"$resp")"
like "hello adds its request header (seen by the backend)" '^X-Hello: there$' "$(sed -n '/^$/,$p' <<<"$resp")"
t_done
