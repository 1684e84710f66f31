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

# bench_backend DIR PORT: writes DIR/backend.conf, the nginx backend every
# benchmark uses (one worker, HTTP/1.1 keep-alive on 127.0.0.1:PORT,
# /small = "hello world\n", /16k = 16 KiB of "x" from DIR/16k), as
# shared/bench/peers.sh's.
bench_backend() {
  head -c 16384 /dev/zero | tr '\0' 'x' >"$1/16k"; chmod 644 "$1/16k"
  cat >"$1/backend.conf" <<EOF
worker_processes 1;
daemon off;
pid $1/backend.pid;
error_log $1/backend.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location = /small { return 200 "hello world\n"; }
    location = /16k { root $1; try_files /16k =404; }
  }
}
EOF
}

# bench_cert DIR WHO [OPENSSL-KEY-ARGS...]: a self-signed certificate for
# bench.test, localhost and 127.0.0.1 (EC P-256 unless key arguments are
# given): DIR/bench.crt, DIR/bench.key and DIR/bench.pem (both, HAProxy's
# crt).  Exits naming WHO when openssl fails.
bench_cert() {
  local d=$1 who=$2; shift 2
  [ $# -gt 0 ] || set -- -newkey ec -pkeyopt ec_paramgen_curve:P-256
  openssl req -x509 "$@" -nodes -days 2 -subj "/CN=bench.test" \
    -addext "subjectAltName=DNS:bench.test,DNS:localhost,IP:127.0.0.1" \
    -keyout "$d/bench.key" -out "$d/bench.crt" >"$d/openssl.log" 2>&1 ||
    { cat "$d/openssl.log" >&2; echo "$who: openssl could not make the certificate" >&2; exit 1; }
  cat "$d/bench.crt" "$d/bench.key" >"$d/bench.pem"
  chmod 644 "$d/bench.crt" "$d/bench.key" "$d/bench.pem"
}
