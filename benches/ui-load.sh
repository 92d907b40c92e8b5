#!/usr/bin/env bash
# Server time of the web console's fleet-wide pages at FLEET (10,000) nodes: the nodes list
# (page 1, a deep page, a search, a state filter), the dashboard, and two baselines run in
# the same script: /healthz (the floor any request pays here) and /api/v1/status (the same
# fleet data as JSON, what `umc-admin status` reads).
#
#   benches/ui-load.sh              # from anywhere; builds target/release first
#
# Each page is measured with wrk over one keep-alive connection (one request at a time, so
# latency is server time plus loopback) for DURATION, after a warm-up; it then prints p50/p99
# and p50 as a ratio to /healthz. "cold" rows are single requests right after the 5 s fleet
# status cache expired or the model changed (what the first viewer after a report burst or an
# edit waits).
#
# Environment: FLEET (10000), TASKS (20), REPORTED (90, percent of hosts that report),
# DURATION (10s), SKIP_BUILD=1 to use the existing release binaries.
# Needs: cargo, curl, wrk, jq. Listens on 127.0.0.1 only; stops what it started, by PID.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

FLEET=${FLEET:-10000}
TASKS=${TASKS:-20}
REPORTED=${REPORTED:-90}
DURATION=${DURATION:-10s}
CHUNK=2000

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
for tool in curl wrk jq; do
    command -v "$tool" >/dev/null || { echo "ui-load.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umc-ui-load.XXXXXX")
UMCD_PID=
cleanup() {
    local rc=$?
    stop_pids "$UMCD_PID"
    if [ "$rc" -ne 0 ]; then
        echo "ui-load.sh: failed (exit $rc); last lines of the umcd log:" >&2
        tail -n 20 "$TMP/umcd.log" 2>/dev/null >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bins"
    cargo build --release -j2 --bins
fi

UMC_PORT=$(free_port)
UMC_BASE=http://127.0.0.1:$UMC_PORT
log "starting umcd on $UMC_BASE"
RUST_LOG=warn "$ROOT/target/release/umcd" --listen "127.0.0.1:$UMC_PORT" --data-dir "$TMP/data" >"$TMP/umcd.log" 2>&1 &
UMCD_PID=$!
wait_http "$UMC_BASE/healthz"
ADMIN_TOKEN=$(tr -d '[:space:]' <"$TMP/data/admin.token")

task_name() { printf -v t 't%02d' "$1"; }

log "$TASKS tasks, $FLEET hosts with two tasks each"
{
    printf '{"force":true,"ops":['
    for ((i = 0; i < TASKS; i++)); do
        task_name "$i"
        [ "$i" -gt 0 ] && printf ','
        printf '{"op":"task_add","task":"%s"},{"op":"task_depend","task":"%s","relations":["less"]}' "$t" "$t"
    done
    printf ']}'
} >"$TMP/tasks.json"
edit "$TMP/tasks.json" >/dev/null
for ((first = 1; first <= FLEET; first += CHUNK)); do
    last=$((first + CHUNK - 1))
    [ "$last" -le "$FLEET" ] || last=$FLEET
    {
        printf '{"ops":['
        for ((i = first; i <= last; i++)); do
            [ "$i" -gt "$first" ] && printf ','
            host_name "$i"
            task_name $((i % TASKS))
            a=$t
            task_name $(((i + 7) % TASKS))
            printf '{"op":"node_add","host":"%s","vars":{"role":"r%d"}},{"op":"assign","host":"%s","tasks":["%s","%s"]}' "$h" $((i % 7)) "$h" "$a" "$t"
        done
        printf ']}'
    } >"$TMP/edit.json"
    gen=$(edit "$TMP/edit.json")
done
log "fleet at generation $gen"

log "reports from $REPORTED% of the hosts"
node_credentials "$UMC_BASE" "$ADMIN_TOKEN" "$FLEET" host_name "$TMP" >"$TMP/all-hosts.txt"
awk -v p="$REPORTED" 'NR % 100 < p' "$TMP/all-hosts.txt" >"$TMP/hosts.txt"
REPORTERS=$(wc -l <"$TMP/hosts.txt")
# Every reporter once: wrk cycles through the hosts; stop when each has reported.
wrk -t2 -c32 -d"$((REPORTERS / 1500 + 5))s" --timeout 30s -s "$ROOT/benches/report-load.lua" \
    "$UMC_BASE" -- "$TMP/hosts.txt" 2 >"$TMP/reports.out"
check_wrk "$TMP/reports.out"
REPORTS=$(awk '/requests in/ {print $1}' "$TMP/reports.out")
[ "$REPORTS" -ge "$REPORTERS" ] || { echo "ui-load.sh: only $REPORTS reports for $REPORTERS hosts" >&2; exit 1; }

log "a console user and a session"
printf 'bench-password\nbench-password\n' |
    UMC_URL=$UMC_BASE UMC_TOKEN_FILE=$TMP/data/admin.token "$ROOT/target/release/umc-admin" user add bench --role admin >/dev/null
JAR=$TMP/cookies
curl -fsS -c "$JAR" -o "$TMP/login.html" "$UMC_BASE/ui/login"
CSRF=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$TMP/login.html" | head -n1)
curl -fsS -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "csrf=$CSRF" --data-urlencode user=bench \
    --data-urlencode password=bench-password --data-urlencode next=/ui/ "$UMC_BASE/ui/login"
SESSION=$(awk '$6 == "umc_session" {print $7}' "$JAR")
[ -n "$SESSION" ] || { echo "ui-load.sh: login failed" >&2; exit 1; }
COOKIE="Cookie: umc_session=$SESSION"
curl -fsS -H "$COOKIE" "$UMC_BASE/ui/nodes" | grep -q "of $FLEET" || { echo "ui-load.sh: the nodes list does not show $FLEET nodes" >&2; exit 1; }

# One page: "<p50 ms> <p99 ms> <req/s>" over one keep-alive connection.
measure() {
    local out=$TMP/run.out
    wrk -t1 -c1 -d2s --timeout 30s -H "$2" "$UMC_BASE$1" >/dev/null
    wrk -t1 -c1 -d"$DURATION" --timeout 30s --latency -H "$2" "$UMC_BASE$1" >"$out"
    check_wrk "$out"
    echo "$(to_ms "$(awk '$1=="50%" {print $2}' "$out")") $(to_ms "$(awk '$1=="99%" {print $2}' "$out")") $(awk '/^Requests\/sec:/ {print $2}' "$out")"
}
cold() {
    curl -fsS -o /dev/null -w '%{time_total}' -H "$COOKIE" "$UMC_BASE$1" | awk '{printf "%.3f", $1 * 1000}'
}

AUTH="Authorization: Bearer $ADMIN_TOKEN"
declare -A P50 P99 RPS
for row in "healthz|/healthz|X-Bench: 1" \
    "api_status|/api/v1/status|$AUTH" \
    "nodes_p1|/ui/nodes|$COOKIE" \
    "nodes_p150|/ui/nodes?page=150|$COOKIE" \
    "nodes_search|/ui/nodes?q=h0999|$COOKIE" \
    "nodes_failed|/ui/nodes?state=stale&task=t03|$COOKIE" \
    "dashboard|/ui/|$COOKIE"; do
    IFS='|' read -r name path header <<<"$row"
    log "measuring $path"
    read -r "P50[$name]" "P99[$name]" "RPS[$name]" < <(measure "$path" "$header")
done

log "cold: after the fleet status cache expired, and after an edit"
sleep 6
COLD_NODES=$(cold /ui/nodes)
sleep 6
COLD_DASH=$(cold /ui/)
printf '{"ops":[{"op":"node_set","host":"h00001.example.com","set_vars":{"bench":"1"}}]}' >"$TMP/one.json"
edit "$TMP/one.json" >/dev/null
COLD_EDIT=$(cold /ui/nodes)

echo
echo "umcd web console, $FLEET nodes ($REPORTERS reporting), $TASKS tasks; 127.0.0.1, $(nproc) CPUs; wrk -t1 -c1 -d$DURATION"
printf '%-40s %10s %10s %10s %14s\n' "request" "p50 ms" "p99 ms" "req/s" "p50 / healthz"
for name in healthz api_status nodes_p1 nodes_p150 nodes_search nodes_failed dashboard; do
    printf '%-40s %10.3f %10.3f %10.0f %14.1f\n' "$name" "${P50[$name]}" "${P99[$name]}" "${RPS[$name]}" \
        "$(awk -v a="${P50[$name]}" -v b="${P50[healthz]}" 'BEGIN{print a/b}')"
done
printf '%-40s %10s\n' "cold /ui/nodes (status cache expired)" "$COLD_NODES"
printf '%-40s %10s\n' "cold /ui/ (status cache expired)" "$COLD_DASH"
printf '%-40s %10s\n' "cold /ui/nodes (just after an edit)" "$COLD_EDIT"
