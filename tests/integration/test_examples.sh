#!/usr/bin/env bash
# test_examples.sh — every example configuration of contrib/examples loads.
#
# Each static configuration (a file with entryPoints) is given to
# `relais --check`, from the source tree (relative paths are the README
# demo's), with /etc/relais/dynamic replaced by a scratch directory holding
# its companion dynamic file NAME-dynamic.yaml when there is one: relais
# must print "configuration OK", exit 0, and warn about no unknown key.
# Every dynamic file must be checked through some static one, and the
# examples the issue names must exist.  Providers that talk to a server
# (docker, etcd) are checked for their options only, as --check does.
. "$(dirname "$0")/lib.sh"

EX=$RELAIS_SRCDIR/contrib/examples
for f in relais.yaml dynamic.yaml etc-relais.yaml docker.yaml acme.yaml etcd-cluster.yaml etcd-cluster-controller.yaml etcd-provider.yaml; do
  ok "contrib/examples/$f exists" test -f "$EX/$f"
done

checked=" "
for f in "$EX"/*.yaml; do
  name=$(basename "$f" .yaml)
  grep -q '^entryPoints:' "$f" || continue
  dir=$T/dynamic-$name
  mkdir -p "$dir"
  if [ -f "$EX/$name-dynamic.yaml" ]; then
    cp "$EX/$name-dynamic.yaml" "$dir/"
    checked="$checked$name-dynamic.yaml "
  fi
  sed "s|/etc/relais/dynamic|$dir|g" "$f" >"$T/$name.yaml"
  out=$(cd "$RELAIS_SRCDIR" && "$RELAIS" --check --config "$T/$name.yaml" \
    --plugin-dir "$RELAIS_PLUGIN_DIR" 2>&1)
  rc=$?
  is "$name.yaml: relais --check exits 0" "0" "$rc"
  like "$name.yaml: configuration OK" "^configuration OK$" "$out"
  is "$name.yaml: no unknown key" "" "$(grep -E 'unknown|ERR' <<<"$out" | head -3)"
  [ "$rc" = 0 ] || sed 's/^/#   /' <<<"$out" | grep -v 'loaded .* plugin' | head -20
  # which dynamic files of the examples it read (the README demo's)
  for d in "$EX"/*.yaml; do
    grep -q "contrib/examples/$(basename "$d")" "$f" && checked="$checked$(basename "$d") "
  done
  checked="$checked$name.yaml "
done
for f in "$EX"/*.yaml; do
  case "$checked" in
    *" $(basename "$f") "*) ;;
    *) echo "not checked: $(basename "$f")" ;;
  esac
done >"$T/unchecked"
is "every example was checked" "" "$(cat "$T/unchecked")"
t_done
