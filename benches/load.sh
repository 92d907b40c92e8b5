#!/usr/bin/env bash
# Load test: warm serving of umcd against nginx serving the same bytes as static files, and
# umcd's memory after 1,000 distinct hosts have each fetched their InRelease once.
#
#   benches/load.sh                 # from anywhere; builds target/release first
#
# Environment: WRK_DURATION (10s), WRK_THREADS (2), WRK_CONNS (64), FLEET (1000),
# SKIP_BUILD=1 to use the existing release binaries, UMCD_ENV="K=V ..." extra environment
# for umcd only (e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072), PERF_DIR=<dir> to
# record `perf` profiles of umcd during its two wrk runs into <dir>.
#
# Needs: cargo, curl, wrk, jq, /usr/sbin/nginx (Debian nginx-light). Listens on 127.0.0.1
# only; everything it starts is stopped by PID on exit and its temp dir is removed.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

WRK_DURATION=${WRK_DURATION:-10s}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
FLEET=${FLEET:-1000}
NGINX=${NGINX:-/usr/sbin/nginx}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

for tool in curl wrk jq "$NGINX"; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umc-load.XXXXXX")
UMCD_PID=
NGINX_PID=
PERF_PID=

cleanup() {
    local rc=$?
    stop_pids "$PERF_PID" "$NGINX_PID" "$UMCD_PID"
    if [ "$rc" -ne 0 ]; then
        echo "load.sh: failed (exit $rc); last lines of the server logs:" >&2
        tail -n 20 "$TMP/umcd.log" "$TMP/nginx/error.log" 2>/dev/null >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release -j2 --bin umcd --bin umc-admin
fi
UMCD=$ROOT/target/release/umcd
ADMIN=$ROOT/target/release/umc-admin

# ---------------------------------------------------------------------------------- umcd
UMC_PORT=$(free_port)
UMC_BASE=http://127.0.0.1:$UMC_PORT
log "starting umcd on $UMC_BASE"
read -ra UMCD_ENV_ARR <<<"${UMCD_ENV:-}"
env RUST_LOG=warn "${UMCD_ENV_ARR[@]}" "$UMCD" --listen "127.0.0.1:$UMC_PORT" --data-dir "$TMP/data" >"$TMP/umcd.log" 2>&1 &
UMCD_PID=$!
wait_http "$UMC_BASE/healthz"
export UMC_URL=$UMC_BASE
export UMC_TOKEN_FILE=$TMP/data/admin.token
ADMIN_TOKEN=$(tr -d '[:space:]' <"$UMC_TOKEN_FILE")

HOST=web1.example.com
log "creating $HOST with 10 tasks x 5 dependencies"
TASKS=()
for i in $(seq -w 0 9); do
    t=task$i
    TASKS+=("$t")
    "$ADMIN" task add "$t" --description "Task $t of the load test" >/dev/null
    "$ADMIN" task depend "$t" "$t-server" "$t-client (>= 1.2.3)" "lib${t}1 (>= 2.0~rc1)" \
        "$t-tools | $t-utils" ca-certificates >/dev/null
done
"$ADMIN" node add "$HOST" >/dev/null
"$ADMIN" assign "$HOST" "${TASKS[@]}" >/dev/null
NODE_TOKEN=$("$ADMIN" node token "$HOST")
BASIC=$(printf '%s:%s' "$HOST" "$NODE_TOKEN" | base64 -w0)

REPO=hosts/$HOST
INRELEASE=$REPO/dists/umc/InRelease
DOCROOT=$TMP/docroot
mkdir -p "$DOCROOT/$REPO/dists/umc"
t0=$(date +%s.%N)
curl -fsS -u "$HOST:$NODE_TOKEN" "$UMC_BASE/$INRELEASE" -o "$DOCROOT/$INRELEASE"
t1=$(date +%s.%N)
PACKAGES=$(curl -fsS -u "$HOST:$NODE_TOKEN" "$UMC_BASE/$REPO/dists/umc/main/binary-amd64/Packages")
DEB=$REPO/$(printf '%s\n' "$PACKAGES" | awk '/^Filename: .*umc-task-/ {print $2; exit}')
[ "$DEB" != "$REPO/" ] || { echo "load.sh: no task package in Packages" >&2; exit 1; }
mkdir -p "$DOCROOT/$(dirname "$DEB")"
curl -fsS -u "$HOST:$NODE_TOKEN" "$UMC_BASE/$DEB" -o "$DOCROOT/$DEB"
log "first (cold) InRelease of $HOST: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f ms", (b-a)*1000}')," \
    "InRelease $(stat -c %s "$DOCROOT/$INRELEASE") B, $(basename "$DEB") $(stat -c %s "$DOCROOT/$DEB") B"

# --------------------------------------------------------------------------------- nginx
NGINX_PORT=$(free_port)
NGINX_BASE=http://127.0.0.1:$NGINX_PORT
NG=$TMP/nginx
mkdir -p "$NG/logs"
# nginx's workers run as an unprivileged user when started as root: let them reach the
# docroot (the temp dir stays unlistable; umcd's data dir keeps its own 0700).
chmod 711 "$TMP"
chmod -R a+rX "$DOCROOT"
cat >"$NG/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path $NG/client_body;
    proxy_temp_path $NG/proxy;
    fastcgi_temp_path $NG/fastcgi;
    uwsgi_temp_path $NG/uwsgi;
    scgi_temp_path $NG/scgi;
    types {
        application/vnd.debian.binary-package deb;
    }
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $DOCROOT;
    }
}
EOF
log "starting nginx on $NGINX_BASE"
"$NGINX" -e "$NG/error.log" -p "$NG" -c "$NG/nginx.conf" -t -q
"$NGINX" -e "$NG/error.log" -p "$NG" -c "$NG/nginx.conf" &
NGINX_PID=$!
wait_http "$NGINX_BASE/"

# Same bytes from both servers.
for f in "$INRELEASE" "$DEB"; do
    a=$(curl -fsS -u "$HOST:$NODE_TOKEN" "$UMC_BASE/$f" | sha256sum)
    b=$(curl -fsS "$NGINX_BASE/$f" | sha256sum)
    [ "$a" = "$b" ] || { echo "load.sh: $f differs between umcd and nginx" >&2; exit 1; }
done

# ----------------------------------------------------------------------------------- wrk
# Prints "<req/s> <p50> <p99>" for one run.
run_wrk() {
    local out
    out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" --latency \
        -H "Authorization: Basic $BASIC" "$1")
    if printf '%s\n' "$out" | grep -q 'Non-2xx'; then
        printf '%s\n' "$out" >&2
        echo "load.sh: non-2xx responses from $1" >&2
        return 1
    fi
    printf '%s\n' "$out" | awk '
        /Requests\/sec:/ {rps=$2}
        $1=="50%" {p50=$2}
        $1=="99%" {p99=$2}
        END {print rps, p50, p99}'
}

declare -A RESULT
for target in umcd:InRelease umcd:deb nginx:InRelease nginx:deb; do
    server=${target%%:*}
    what=${target#*:}
    base=$UMC_BASE
    [ "$server" = nginx ] && base=$NGINX_BASE
    path=$INRELEASE
    [ "$what" = deb ] && path=$DEB
    log "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION $server $what"
    if [ -n "${PERF_DIR:-}" ] && [ "$server" = umcd ]; then
        mkdir -p "$PERF_DIR"
        perf record -q -F 999 -g -p "$UMCD_PID" -o "$PERF_DIR/umcd-$what.data" 2>/dev/null &
        PERF_PID=$!
    fi
    RESULT[$target]=$(run_wrk "$base/$path")
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=
    fi
done

UMCD_RSS_WARM=$(rss_kib "$UMCD_PID")

# ------------------------------------------------------------------- 1,000 distinct hosts
log "adding $FLEET hosts in one edit"
{
    printf '{"ops":['
    for i in $(seq 1 "$FLEET"); do
        [ "$i" -gt 1 ] && printf ','
        a=${TASKS[$((i % 10))]}
        b=${TASKS[$(((i * 3 + 1) % 10))]}
        c=${TASKS[$(((i * 7 + 2) % 10))]}
        printf '{"op":"node_add","host":"h%d.example.com"},' "$i"
        printf '{"op":"assign","host":"h%d.example.com","tasks":["%s","%s","%s"]}' "$i" "$a" "$b" "$c"
    done
    printf ']}'
} >"$TMP/edit.json"
t0=$(date +%s.%N)
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary "@$TMP/edit.json" "$UMC_BASE/api/v1/edit" | jq -r '"generation \(.generation), \(.changes | length) change lines"' >&2
t1=$(date +%s.%N)
log "edit of $(stat -c %s "$TMP/edit.json") B took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f ms", (b-a)*1000}')"

# Node tokens: one curl process, one URL per host.
: >"$TMP/tokens.curl"
for i in $(seq 1 "$FLEET"); do
    printf 'url = "%s/api/v1/nodes/h%d.example.com/token"\n' "$UMC_BASE" "$i" >>"$TMP/tokens.curl"
done
curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -K "$TMP/tokens.curl" |
    jq -r '"\(.host) \(.token)"' >"$TMP/tokens.txt"
[ "$(wc -l <"$TMP/tokens.txt")" -eq "$FLEET" ] || { echo "load.sh: expected $FLEET tokens" >&2; exit 1; }

# Fetch configs for one curl process per batch: every host's InRelease over one keep-alive
# connection, each with its own credentials (`next` resets options between URLs); -w gives
# per-request timings. Cold fetches run in growing batches with an RSS sample after each, so
# the report shows whether memory grows per host or levels off.
fetch_config() { # first last -> curl config on stdout
    sed -n "$1,$2p" "$TMP/tokens.txt" | {
        first=1
        while read -r h tok; do
            [ "$first" = 1 ] || echo next
            first=0
            printf 'url = "%s/hosts/%s/dists/umc/InRelease"\nuser = "%s:%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
                "$UMC_BASE" "$h" "$h" "$tok"
        done
    }
}

# Fetches hosts $2..$3 and appends their "<code> <seconds>" lines to $TMP/$1.times; prints
# the wall time in ms.
fetch_batch() {
    local t0 t1
    fetch_config "$2" "$3" >"$TMP/fetch.curl"
    t0=$(date +%s.%N)
    curl -sS -K "$TMP/fetch.curl" >>"$TMP/$1.times"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f\n", (b-a)*1000}'
}

# "<total ms> <mean ms> <p50 ms> <p99 ms> <max ms>" of $TMP/$1.times; fails unless all 200.
fetch_stats() {
    if [ "$(awk '$1==200' "$TMP/$1.times" | wc -l)" -ne "$FLEET" ]; then
        awk '{print $1}' "$TMP/$1.times" | sort | uniq -c >&2
        echo "load.sh: not every InRelease fetch returned 200" >&2
        return 1
    fi
    awk '{print $2}' "$TMP/$1.times" | sort -g | awk -v total="$2" '
        {v[NR]=$1; s+=$1}
        END {printf "%d %.2f %.2f %.2f %.2f\n", total, s/NR*1000,
             v[int(NR*0.5)]*1000, v[int(NR*0.99)]*1000, v[NR]*1000}'
}

UMCD_RSS_BEFORE=$(rss_kib "$UMCD_PID")
log "fetching $FLEET InRelease files (cold), RSS after each batch"
: >"$TMP/cold.times"
RSS_CURVE="0:$((UMCD_RSS_BEFORE / 1024))"
cold_total=0
prev=0
for end in 10 100 250 500 1000 2000 5000 10000 "$FLEET"; do
    if [ "$end" -gt "$FLEET" ] || [ "$end" -le "$prev" ]; then
        continue
    fi
    ms=$(fetch_batch cold $((prev + 1)) "$end")
    cold_total=$((cold_total + ms))
    RSS_CURVE="$RSS_CURVE $end:$(($(rss_kib "$UMCD_PID") / 1024))"
    prev=$end
done
COLD=$(fetch_stats cold "$cold_total")
UMCD_RSS_AFTER=$(rss_kib "$UMCD_PID")
log "fetching $FLEET InRelease files again (warm)"
: >"$TMP/warm.times"
warm_total=$(fetch_batch warm 1 "$FLEET")
WARM=$(fetch_stats warm "$warm_total")
UMCD_RSS_AFTER_WARM=$(rss_kib "$UMCD_PID")
UMCD_HWM=$(hwm_kib "$UMCD_PID")

# -------------------------------------------------------------------------------- report
echo
echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION (127.0.0.1, $(nproc) CPUs shared by wrk and the server)"
printf '%-10s %14s %14s %12s   %s\n' file "umcd req/s" "nginx req/s" umcd/nginx "p50/p99 latency umcd | nginx"
for what in InRelease deb; do
    read -r u_rps u_p50 u_p99 <<<"${RESULT[umcd:$what]}"
    read -r n_rps n_p50 n_p99 <<<"${RESULT[nginx:$what]}"
    printf '%-10s %14.0f %14.0f %12.2f   %s/%s | %s/%s\n' "$what" "$u_rps" "$n_rps" \
        "$(awk -v a="$u_rps" -v b="$n_rps" 'BEGIN{print a/b}')" "$u_p50" "$u_p99" "$n_p50" "$n_p99"
done
echo
read -r c_total c_mean c_p50 c_p99 c_max <<<"$COLD"
read -r w_total w_mean w_p50 w_p99 w_max <<<"$WARM"
echo "$FLEET distinct hosts, InRelease each, sequential over one connection:"
printf '  %-5s total %6d ms   mean %6.2f ms   p50 %6.2f ms   p99 %6.2f ms   max %6.2f ms\n' \
    cold "$c_total" "$c_mean" "$c_p50" "$c_p99" "$c_max" warm "$w_total" "$w_mean" "$w_p50" "$w_p99" "$w_max"
echo
echo "umcd VmRSS (MiB) after N cold hosts: $RSS_CURVE"
echo "umcd VmRSS: after wrk $((UMCD_RSS_WARM / 1024)) MiB; before the $FLEET fetches $((UMCD_RSS_BEFORE / 1024)) MiB;" \
    "after them $((UMCD_RSS_AFTER / 1024)) MiB (+$(((UMCD_RSS_AFTER - UMCD_RSS_BEFORE) / 1024)) MiB," \
    "$(((UMCD_RSS_AFTER - UMCD_RSS_BEFORE) / FLEET)) KiB/host); after the warm pass $((UMCD_RSS_AFTER_WARM / 1024)) MiB; VmHWM $((UMCD_HWM / 1024)) MiB"
