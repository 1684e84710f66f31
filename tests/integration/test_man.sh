#!/usr/bin/env bash
# test_man.sh — the manual pages of man/:
#
#  - each page renders with `groff -man -ww -Tutf8` without a warning (one
#    check per page);
#  - the pages issue 11 names exist (relaisctl.8 once relaisctl is built)
#    and each page of man/ is installed and distributed (dist_man_MANS);
#  - every relais page a page refers to (relais-dynamic(5), ...) exists;
#  - relais(8) documents every option `relais --help` prints, relaisctl(8)
#    every option `relaisctl --help` prints and each command (once built);
#  - the example of relais-plugins(7) is sdk/examples/hello/hello.c as it
#    is, and it compiles against the SDK headers.
. "$(dirname "$0")/lib.sh"

command -v groff >/dev/null || { echo "Bail out! groff not installed (apt-get install groff-base)"; exit 1; }
MAN=$RELAIS_SRCDIR/man

for p in "$MAN"/*.[0-9]; do
  out=$(groff -man -ww -Tutf8 "$p" 2>&1 >/dev/null)
  is "$(basename "$p") renders without a warning" "" "$out"
done

pages="relais.8 relais.yaml.5 relais-dynamic.5 relais-plugins.7"
[ -x "$RELAIS_BUILDDIR/src/relaisctl" ] && pages="$pages relaisctl.8"
missing=""
for p in $pages; do [ -f "$MAN/$p" ] || missing="$missing $p"; done
is "the pages of issue 11 exist ($pages)" "" "$missing"

dist=$(printf 'relais-print-var:\n\t@echo $(dist_man_MANS)\n' |
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    make -s --no-print-directory -C "$RELAIS_BUILDDIR" -f Makefile -f - relais-print-var)
missing=""
for p in "$MAN"/*.[0-9]; do
  case " $dist " in *" man/$(basename "$p") "*) ;; *) missing="$missing $(basename "$p")" ;; esac
done
is "every page of man/ is in dist_man_MANS" "" "$missing"

# references such as ".BR relais\-dynamic (5)" or "relais.yaml (5)"
refs=$(cat "$MAN"/*.[0-9] | grep -oE '^\.BR? relais[-a-z.\\]*( \([0-9]\))?' |
  sed -E 's/^\.BR? //; s/\\-/-/g; s/ \(([0-9])\)/.\1/' | grep -E '\.[0-9]$' | sort -u)
missing=""
for r in $refs; do
  case $r in relaisctl.8) [ -x "$RELAIS_BUILDDIR/src/relaisctl" ] || continue ;; esac
  [ -f "$MAN/$r" ] || missing="$missing $r"
done
is "every relais page referred to exists ($(echo $refs))" "" "$missing"

opts=$("$RELAIS" --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z][-a-z]*' | sed -E 's/.*--//' | sort -u)
missing=""
for o in $opts; do
  grep -q -- "\\\\-\\\\-$(sed 's/-/\\\\-/g' <<<"$o")" "$MAN/relais.8" || missing="$missing --$o"
done
is "relais(8) documents every option of relais --help ($(echo $opts | wc -w))" "" "$missing"

# relaisctl(8): every option of relaisctl --help and every command
CTL=$RELAIS_BUILDDIR/src/relaisctl
if [ -x "$CTL" ]; then
  opts=$("$CTL" --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z][-a-z]*' | sed -E 's/.*--//' | sort -u)
  missing=""
  for o in $opts; do
    grep -q -- "\\\\-\\\\-$(sed 's/-/\\\\-/g' <<<"$o")" "$MAN/relaisctl.8" || missing="$missing --$o"
  done
  is "relaisctl(8) documents every option of relaisctl --help ($(echo $opts | wc -w))" "" "$missing"
  missing=""
  for c in apply get status certs backup restore; do
    grep -q "^\.SS $c\$" "$MAN/relaisctl.8" || missing="$missing $c"
  done
  is "relaisctl(8) has a section per command" "" "$missing"
fi

# the example: between the BEGIN/END comments, groff escapes undone
python3 - "$MAN/relais-plugins.7" "$T/hello.c" <<'PYEOF'
import re, sys
src = open(sys.argv[1], encoding="ascii").read()
m = re.search(r'^\.\\" BEGIN hello\.c[^\n]*\n\.EX\n(.*?)\n\.EE\n\.\\" END hello\.c', src, re.S | re.M)
names = {"e": "\\", "-": "-", "&": "", "(aq": "'", "(ga": "`", "(ha": "^", "(ti": "~", "(em": "\u2014"}
text = re.sub(r'\\(e|-|&|\([a-z]{2})', lambda x: names[x.group(1)], m.group(1)) if m else ""
open(sys.argv[2], "w", encoding="utf-8").write(text + "\n" if text else "")
PYEOF
ok "relais-plugins(7) shows sdk/examples/hello/hello.c as it is" \
  cmp -s "$T/hello.c" "$RELAIS_SRCDIR/sdk/examples/hello/hello.c"
${CC:-cc} -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared \
  -I"$RELAIS_SRCDIR/sdk" -o "$T/hello.so" "$T/hello.c" >"$T/cc.log" 2>&1
is "the example of relais-plugins(7) compiles" "0" "$?"
sed 's/^/# /' "$T/cc.log" | head -10
t_done
