#!/usr/bin/env bash
# Load test for fleet monitoring: FLEET (10,000) hosts POST reports concurrently over
# keep-alive connections, and apt traffic served at the same time must not slow down.
# It prints reports/s, and the InRelease p50/p99 latency of a modest, paced apt load
#   (a) alone, (b) while the reports come in, (c) while a load of the same shape hits the
#   trivial /healthz (a control: what any saturating keep-alive load costs on this machine),
#   (d) alone again (how much the machine drifted during the run);
# and p99 (b) / p99 (a).
#
#   benches/report-load.sh          # from anywhere; builds target/release first
#
# Environment: FLEET (10000), CHUNK (2000 hosts per admin edit), DURATION (20s, each latency
# run), LEAD (3, seconds the report load runs before and after the latency run),
# REPORT_THREADS (2), REPORT_CONNS (64), INR_HOSTS (8, hosts the InRelease load rotates
# through), INR_CONNS (4), INR_DELAY_MS (10, pause after each InRelease response per
# connection), SKIP_BUILD=1 to use the existing release binaries, UMCD_ENV="K=V ..." extra
# environment for umcd only.
#
# Needs: cargo, curl, wrk, jq. Listens on 127.0.0.1 only; everything it starts is stopped by
# PID on exit and its temp dir is removed. About 100 s on 2 cores, plus the build.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

FLEET=${FLEET:-10000}
CHUNK=${CHUNK:-2000}
DURATION=${DURATION:-20s}
LEAD=${LEAD:-3}
REPORT_THREADS=${REPORT_THREADS:-2}
REPORT_CONNS=${REPORT_CONNS:-64}
INR_HOSTS=${INR_HOSTS:-8}
INR_CONNS=${INR_CONNS:-4}
INR_DELAY_MS=${INR_DELAY_MS:-10}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

for tool in curl wrk jq; do
    command -v "$tool" >/dev/null || { echo "report-load.sh: $tool is not installed" >&2; exit 2; }
done
case $DURATION in
[1-9]*s) ;;
*) echo "report-load.sh: DURATION must be whole seconds, like 20s" >&2; exit 2 ;;
esac
[ "$INR_HOSTS" -le "$FLEET" ] || { echo "report-load.sh: INR_HOSTS > FLEET" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umc-report-load.XXXXXX")
UMCD_PID=
BG_PID=

cleanup() {
    local rc=$?
    stop_pids "$BG_PID" "$UMCD_PID"
    if [ "$rc" -ne 0 ]; then
        echo "report-load.sh: failed (exit $rc); last lines of the umcd log:" >&2
        tail -n 20 "$TMP/umcd.log" 2>/dev/null >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now_s() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", (b-a)*1000}'; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bins"
    cargo build --release -j2 --bins
fi
UMCD=$ROOT/target/release/umcd

# ---------------------------------------------------------------------------------- umcd
UMC_PORT=$(free_port)
UMC_BASE=http://127.0.0.1:$UMC_PORT
log "starting umcd on $UMC_BASE"
read -ra UMCD_ENV_ARR <<<"${UMCD_ENV:-}"
env RUST_LOG=warn "${UMCD_ENV_ARR[@]}" "$UMCD" --listen "127.0.0.1:$UMC_PORT" --data-dir "$TMP/data" >"$TMP/umcd.log" 2>&1 &
UMCD_PID=$!
wait_http "$UMC_BASE/healthz"
ADMIN_TOKEN=$(tr -d '[:space:]' <"$TMP/data/admin.token")

# ------------------------------------------------------------------------------- the fleet
log "one task (depends on less), $FLEET hosts assigned to it, $CHUNK per edit"
cat >"$TMP/task.json" <<'EOF'
{"force":true,"ops":[
 {"op":"task_add","task":"base","description":"Base task of the report load test"},
 {"op":"task_depend","task":"base","relations":["less"]}
]}
EOF
edit "$TMP/task.json" >/dev/null
t0=$(now_s)
for ((first = 1; first <= FLEET; first += CHUNK)); do
    last=$((first + CHUNK - 1))
    [ "$last" -le "$FLEET" ] || last=$FLEET
    {
        printf '{"ops":['
        for ((i = first; i <= last; i++)); do
            [ "$i" -gt "$first" ] && printf ','
            host_name "$i"
            printf '{"op":"node_add","host":"%s"},{"op":"assign","host":"%s","tasks":["base"]}' "$h" "$h"
        done
        printf ']}'
    } >"$TMP/edit.json"
    gen=$(edit "$TMP/edit.json")
done
t1=$(now_s)
log "$FLEET hosts added in $(elapsed_ms "$t0" "$t1") ms (generation $gen)"

# Node tokens: "<host> <base64 of host:token>" lines.
t0=$(now_s)
node_credentials "$UMC_BASE" "$ADMIN_TOKEN" "$FLEET" host_name "$TMP" >"$TMP/hosts.txt"
t1=$(now_s)
log "$FLEET node tokens fetched in $(elapsed_ms "$t0" "$t1") ms"

# The hosts the apt load fetches, spread over the fleet; one fetch each first, so the latency
# runs measure warm serving (the steady state of apt traffic), and check the credentials.
awk -v n="$INR_HOSTS" -v f="$FLEET" 'NR % int(f / n) == 1 && c < n {print; c++}' "$TMP/hosts.txt" >"$TMP/inrelease-hosts.txt"
while read -r h basic; do
    curl -fsS -o /dev/null -H "Authorization: Basic $basic" "$UMC_BASE/hosts/$h/dists/umc/InRelease"
done <"$TMP/inrelease-hosts.txt"
# And one report, so a format error shows here and not as a wall of non-2xx from wrk.
read -r h basic <"$TMP/hosts.txt"
now=$(date +%s)
answer=$(printf 'Format: umc-report/1\nStarted: %d\nFinished: %d\nStep: update 0\nStep: install 0\nStep: autoremove 0\nInstalled: umc-node 1.3\nInstalled: umc-%s 1.3\nReboot-Required: no\nUpgradable: 2\n' \
    $((now - 30)) "$now" "$h" |
    curl -sS -H "Authorization: Basic $basic" -H 'Content-Type: text/plain' --data-binary @- "$UMC_BASE/hosts/$h/report")
[ "$answer" = stored ] || { echo "report-load.sh: test report answered: $answer" >&2; exit 1; }

# --------------------------------------------------------------------------------- runs
# The paced InRelease load; prints "<req/s> <p50 ms> <p99 ms> <requests>".
inrelease_run() {
    local out=$TMP/inrelease-$1.out
    wrk -t1 -c"$INR_CONNS" -d"$DURATION" --timeout 30s --latency -s "$ROOT/benches/report-load-inrelease.lua" \
        "$UMC_BASE" -- "$TMP/inrelease-hosts.txt" "$INR_DELAY_MS" >"$out"
    check_wrk "$out"
    local rps p50 p99 reqs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
    reqs=$(awk '/requests in/ {print $1}' "$out")
    echo "$rps $p50 $p99 $reqs"
}

BG_SECONDS=$((${DURATION%s} + 2 * LEAD))

# Runs a background wrk ($1: name, rest: wrk arguments after the options) for BG_SECONDS and
# the InRelease load in its middle; prints the InRelease result. Leaves $TMP/$1.out.
under_load() {
    local name=$1
    shift
    wrk -t"$REPORT_THREADS" -c"$REPORT_CONNS" -d"${BG_SECONDS}s" --timeout 30s --latency "$@" >"$TMP/$name.out" &
    BG_PID=$!
    sleep "$LEAD"
    inrelease_run "$name"
    wait "$BG_PID"
    BG_PID=
    check_wrk "$TMP/$name.out"
}

WRK_INR="wrk -t1 -c$INR_CONNS -d$DURATION, pause ${INR_DELAY_MS} ms per connection, $INR_HOSTS hosts"
WRK_BG="wrk -t$REPORT_THREADS -c$REPORT_CONNS -d${BG_SECONDS}s"

log "(a) InRelease alone: $WRK_INR"
ALONE=$(inrelease_run alone)

log "(b) InRelease under report load: $WRK_BG, $FLEET hosts in turn"
cpu0=$(cpu_ticks "$UMCD_PID")
UNDER=$(under_load reports -s "$ROOT/benches/report-load.lua" "$UMC_BASE" -- "$TMP/hosts.txt" "$REPORT_THREADS")
cpu1=$(cpu_ticks "$UMCD_PID")

log "(c) InRelease under /healthz load (control): $WRK_BG"
CONTROL=$(under_load healthz "$UMC_BASE/healthz")

log "(d) InRelease alone again"
AFTER=$(inrelease_run after)

# Every host must have reported at least once.
REPORTED=$(curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$UMC_BASE/api/v1/status" |
    jq '[.[] | select(.last_report != null)] | length')

# -------------------------------------------------------------------------------- summary
wrk_field() { awk -v k="$2" '$1==k {print $2}' "$TMP/$1.out"; }
REPORT_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/reports.out")
REPORT_N=$(awk '/requests in/ {print $1}' "$TMP/reports.out")
HEALTHZ_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/healthz.out")
CPU_US=$(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$REPORT_N" 'BEGIN{printf "%.0f", t / hz * 1e6 / n}')

echo
echo "umcd, $FLEET hosts, 127.0.0.1, $(nproc) CPUs shared by wrk and umcd"
echo "report load: $WRK_BG, every request a distinct host in turn (keep-alive)"
printf '  reports/s %10.0f   (%s reports; p50/p99 until \"stored\" %s/%s; umcd CPU %s us/report)\n' \
    "$REPORT_RPS" "$REPORT_N" "$(wrk_field reports 50%)" "$(wrk_field reports 99%)" "$CPU_US"
printf '  hosts with a report: %s of %s\n' "$REPORTED" "$FLEET"
printf '  /healthz req/s at the same wrk settings (the generator'"'"'s ceiling): %.0f\n' "$HEALTHZ_RPS"
echo "InRelease: $WRK_INR"
printf '  %-34s %9s %9s %9s %8s\n' run req/s "p50 ms" "p99 ms" requests
for row in "(a) alone:$ALONE" "(b) under report load:$UNDER" "(c) under /healthz load:$CONTROL" "(d) alone again:$AFTER"; do
    read -r rps p50 p99 reqs <<<"${row#*:}"
    printf '  %-34s %9.0f %9.2f %9.2f %8s\n' "${row%%:*}" "$rps" "$p50" "$p99" "$reqs"
done
read -r _ _ a_p99 _ <<<"$ALONE"
read -r _ _ u_p99 _ <<<"$UNDER"
read -r _ _ c_p99 _ <<<"$CONTROL"
awk -v a="$a_p99" -v u="$u_p99" -v c="$c_p99" 'BEGIN {
    printf "  p99 under report load / p99 alone: %.2f   (under /healthz load / alone: %.2f)\n", u / a, c / a
}'
if [ "$REPORTED" -ne "$FLEET" ]; then
    echo "report-load.sh: only $REPORTED of $FLEET hosts reported; raise DURATION or LEAD" >&2
    exit 1
fi
