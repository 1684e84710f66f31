#!/usr/bin/env bash
# test_install.sh — the install layout and the out-of-tree plugin workflow
# (issue 11), black box:
#
#  - `make install DESTDIR=...` from the build tree lays out every path the
#    issue names, each checked against what the build has: bin/ (every
#    program: relais, and relaisctl once it is built), every plugin .so
#    under lib/relais/plugins (and no libtool .la), include/relais/*.h,
#    lib/pkgconfig/relais-sdk.pc, every page of man/ in share/man/manN,
#    share/doc/relais/examples (every contrib/examples file), the systemd
#    unit (ExecStart and --config rewritten for the prefix), the logrotate
#    snippet, and etc/relais/relais.yaml, which `relais --check` accepts;
#  - installing again keeps an edited etc/relais/relais.yaml;
#  - every sdk/examples/* builds with only the installed SDK, found by
#    `pkg-config relais-sdk` (the .pc's prefix moved with
#    --define-variable), with -Wall -Wextra -Werror, and exports only its
#    descriptor; the installed relais lists it, and hello's effect is
#    checked through the installed relais (its header on the request the
#    backend sees and on the response);
#  - `make uninstall DESTDIR=...` removes everything it installed, except
#    the edited relais.yaml.
#
# The install runs the install-exec-am and install-data-am targets, which
# are what `make install` runs after `all`: the tree is built already, and
# `all` would restage plugins-staged/ under tests running concurrently.
. "$(dirname "$0")/lib.sh"

DEST=$T/dest
B=$RELAIS_BUILDDIR

# mkvar NAME: the value of the build tree's make variable NAME, expanded
# (without the flags of a make check that runs this test).
mkvar() {
  printf 'relais-print-var:\n\t@echo $(%s)\n' "$1" |
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
      make -s --no-print-directory -C "$B" -f Makefile -f - relais-print-var
}
PREFIX=$(mkvar prefix)
BINDIR=$(mkvar bindir)
SYSCONF=$(mkvar sysconfdir)
PLUGINS=$(mkvar pluginsdir)
INCDIR=$(mkvar sdkincludedir)
PKGDIR=$(mkvar pkgconfigdir)
MANDIR=$(mkvar mandir)
DOCDIR=$(mkvar docdir)
echo "# prefix $PREFIX, sysconfdir $SYSCONF, pluginsdir $PLUGINS, docdir $DOCDIR"

make -s -C "$B" install-exec-am install-data-am DESTDIR="$DEST" >"$T/install.log" 2>&1
is "make install DESTDIR succeeds" "0" "$?"
grep -iE 'error' "$T/install.log" | sed 's/^/# /' | head -5

# ---- the layout
missing=""
for p in $(mkvar bin_PROGRAMS); do
  [ -x "$DEST$BINDIR/$(basename "$p")" ] || missing="$missing $(basename "$p")"
done
is "bin/: every program is installed ($(mkvar bin_PROGRAMS | xargs -n1 basename | tr '\n' ' '))" "" "$missing"
case " $(mkvar bin_PROGRAMS) " in
  *relaisctl*)
    like "the installed relaisctl runs" "^relaisctl [0-9]" "$("$DEST$BINDIR/relaisctl" --version 2>&1)"
    ok "relaisctl(8) is installed" test -f "$DEST$MANDIR/man8/relaisctl.8" ;;
  *) echo "# relaisctl is not built yet (issue 10): not checked" ;;
esac
like "the installed relais runs" "^relais [0-9]" "$("$DEST$BINDIR/relais" --version 2>&1)"

missing="" n=0
for la in $(mkvar plugins_LTLIBRARIES); do
  n=$((n + 1))
  [ -f "$DEST$PLUGINS/$(basename "$la" .la).so" ] || missing="$missing $(basename "$la" .la)"
done
is "lib/relais/plugins: every plugin's .so ($n)" "" "$missing"
is "lib/relais/plugins: no libtool .la file" "" "$(cd "$DEST$PLUGINS" && ls ./*.la 2>/dev/null)"
missing=""
for h in $(mkvar sdkinclude_HEADERS); do
  [ -f "$DEST$INCDIR/$(basename "$h")" ] || missing="$missing $h"
done
is "include/relais: every SDK header" "" "$missing"
ok "lib/pkgconfig/relais-sdk.pc" test -f "$DEST$PKGDIR/relais-sdk.pc"
missing="" sections=""
for m in "$RELAIS_SRCDIR"/man/*.[0-9]; do
  s=${m##*.}
  sections="$sections $s"
  [ -f "$DEST$MANDIR/man$s/$(basename "$m")" ] || missing="$missing $(basename "$m")"
done
is "share/man: every page of man/" "" "$missing"
is "share/man: sections 5, 7 and 8" "5 7 8" "$(echo $sections | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')"
missing=""
for e in "$RELAIS_SRCDIR"/contrib/examples/*; do
  [ -f "$DEST$DOCDIR/examples/$(basename "$e")" ] || missing="$missing $(basename "$e")"
done
is "share/doc/relais/examples: every contrib/examples file" "" "$missing"
UNIT=$(find "$DEST" -name relais.service -type f)
is "the systemd unit is installed once, in share/doc/relais" "$DEST$DOCDIR/relais.service" "$UNIT"
like "the unit runs the installed binary on the installed configuration" \
  "^ExecStart=$BINDIR/relais --config $SYSCONF/relais/relais.yaml " "$(grep '^ExecStart=' "$UNIT" 2>/dev/null)"
ok "share/doc/relais/relais.logrotate" grep -q 'kill -USR1' "$DEST$DOCDIR/relais.logrotate"
ok "share/doc/relais/MIGRATING-FROM-TRAEFIK.md" test -s "$DEST$DOCDIR/MIGRATING-FROM-TRAEFIK.md"
CONF=$DEST$SYSCONF/relais/relais.yaml
ok "etc/relais/relais.yaml" test -f "$CONF"
ok "etc/relais/dynamic/ (the sample's file provider directory)" test -d "$DEST$SYSCONF/relais/dynamic"
like "the sample reads etc/relais/dynamic of this prefix" "directory: $SYSCONF/relais/dynamic" "$(cat "$CONF")"
sed "s|$SYSCONF/relais/dynamic|$DEST$SYSCONF/relais/dynamic|" "$CONF" >"$T/sample.yaml"
out=$("$DEST$BINDIR/relais" --check --config "$T/sample.yaml" --plugin-dir "$DEST$PLUGINS" 2>&1)
like "relais --check accepts the installed sample" "configuration OK" "$out"

echo "# edited" >>"$CONF"
make -s -C "$B" install-data-am DESTDIR="$DEST" >>"$T/install.log" 2>&1
is "installing again keeps an edited relais.yaml" "# edited" "$(tail -1 "$CONF")"

# ---- sdk/examples/* against the installed SDK only
export PKG_CONFIG_PATH=$DEST$PKGDIR
unset PKG_CONFIG_SYSROOT_DIR
PC="pkg-config --define-variable=prefix=$DEST$PREFIX"
cflags=$($PC --cflags relais-sdk)
like "pkg-config relais-sdk points into the installed tree" "^-I$DEST" "$cflags"
is "pkg-config's pluginsdir is the installed plugin directory" "$DEST$PLUGINS" \
  "$($PC --variable=pluginsdir relais-sdk)"
mkdir -p "$T/ex"
names=""
for d in "$RELAIS_SRCDIR"/sdk/examples/*/; do
  name=$(basename "$d")
  names="$names $name"
  # shellcheck disable=SC2086
  ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared $cflags \
    -o "$T/ex/$name.so" "$d"*.c >"$T/ex/$name.log" 2>&1
  is "sdk/examples/$name builds with only pkg-config relais-sdk" "0" "$?"
  sed 's/^/# /' "$T/ex/$name.log" | head -10
  is "sdk/examples/$name exports only its descriptor" "relais_plugin_descriptor" \
    "$(nm -D --defined-only "$T/ex/$name.so" 2>/dev/null | awk '{print $3}' | grep -v '^_' | tr '\n' ' ' | sed 's/ $//')"
  cp "$T/ex/$name.so" "$DEST$PLUGINS/"
done
list=$("$DEST$BINDIR/relais" --list-plugins --plugin-dir "$DEST$PLUGINS" 2>/dev/null)
for name in $names; do
  like "the installed relais loads $name" "^$name +[^ ]+ +[a-z]+ +[^ ]+ +1\\.[0-9]+\$" "$list"
done
is "the installed relais loads every installed plugin" \
  "$(ls "$DEST$PLUGINS"/*.so | wc -l | tr -d ' ')" "$(($(printf '%s\n' "$list" | wc -l) - 1))"

# hello's effect through the installed relais
start_whoami w1
RP=$(free_port)
cat >"$T/dyn.yaml" <<EOF
http:
  routers:
    r: {rule: "PathPrefix(\`/\`)", service: s, middlewares: [hi]}
  middlewares:
    hi: {hello: {header: X-Installed, value: "yes"}}
  services:
    s: {loadBalancer: {servers: [{url: "http://127.0.0.1:$WHOAMI_PORT"}]}}
EOF
static_config "$T/relais.yaml" "$RP" "$T/dyn.yaml"
RELAIS=$DEST$BINDIR/relais PLUGIN_DIR=$DEST$PLUGINS start_relais "$T/relais.yaml" "$RP"
wait_log "configuration 2 applied"
resp=$(curl -s -D- "http://127.0.0.1:$RP/" | tr -d '\r')
# (like matches line by line: no newline in these patterns)
like "hello sets its header on the response" '^X-Installed: yes$' "$(sed -n '1,/^$/p' <<<"$resp")"
like "hello sets its header on the request (the backend echoes it)" \
  '^X-Installed: yes$' "$(sed -n '/^$/,$p' <<<"$resp")"
stop_relais_clean

# ---- uninstall
make -s -C "$B" uninstall DESTDIR="$DEST" >"$T/uninstall.log" 2>&1
is "make uninstall DESTDIR succeeds" "0" "$?"
left=$(cd "$DEST" && find . -type f | sort | tr '\n' ' ' | sed 's/ $//')
expect=$( (echo ".$SYSCONF/relais/relais.yaml"; for n in $names; do echo ".$PLUGINS/$n.so"; done) | sort | tr '\n' ' ' | sed 's/ $//')
is "make uninstall leaves only the edited relais.yaml (and the examples copied in)" "$expect" "$left"
t_done
