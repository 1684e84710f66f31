# bench/common.sh — shared by the benchmark scripts (sourced, bash).
#
# bench_workdir PREFIX: creates the work directory $W (/tmp/PREFIX.XXXXXX,
# mode 755 so that nginx workers can read it), an empty PIDS array for the
# processes the script starts, and traps that stop them all (children
# included) and remove $W on exit, Ctrl-C included.

# Stops every process in PIDS (by pid, children included), then removes
# the work directory.
bench_cleanup() {
  local p all=() kids=() left
  set +e
  for p in "${PIDS[@]}"; do
    read -ra kids <<<"$(pgrep -P "$p" 2>/dev/null)"
    all+=("$p" "${kids[@]}")
  done
  for p in "${all[@]}"; do kill "$p" 2>/dev/null; done
  for _ in $(seq 1 30); do
    left=0
    for p in "${all[@]}"; do if kill -0 "$p" 2>/dev/null; then left=1; fi; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}

bench_workdir() {
  W=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$W"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# ---- table helpers

# median: the median of the numbers on stdin (space or newline separated)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
# spread "V1 V2 ...": (max - min) / median in percent, the rounds' noise
spread() {
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g |
    awk '{a[NR]=$1} END{ if (NR==0) { print "nan"; exit }
      m = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
      if (m > 0) printf "%.0f\n", (a[NR]-a[1]) / m * 100; else print "nan" }'
}
# errtext "NON2XX CONNECT READ WRITE TIMEOUT": the nonzero ones, else 0
errtext() {
  awk '{ s = ""; split("non2xx connect read write timeout", n, " ");
         for (i = 1; i <= 5; i++) if ($i > 0) s = s (s ? " " : "") n[i] "=" $i;
         print (s ? s : "0") }' <<<"$1"
}
