#!/usr/bin/env bash
# Catalog import performance: importing Debian main amd64 Packages.xz (the suite this machine's
# apt uses, ~63,000 packages for Debian 12) from a local file, against `xz -dc` of the same
# file as the floor. Also reports umcd's parse/store/index breakdown (from its log), its peak
# RSS (VmHWM), and `catalog search` latency over HTTP.
#
#   benches/catalog.sh                      # builds target/release first
#
# Environment: PACKAGES_XZ=<file> to use that file instead of downloading one from the mirror
# in this machine's apt sources; SKIP_BUILD=1 to use the existing release binaries;
# RUNS (3): floor and import repetitions (the best run counts); SEARCHES (200) per term.
#
# Needs: cargo, curl, xz, apt-cache. Listens on 127.0.0.1 only; umcd is stopped by PID on exit
# and the temp dir is removed.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
SEARCHES=${SEARCHES:-200}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

for tool in curl xz; do
    command -v "$tool" >/dev/null || { echo "catalog.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umc-catalog.XXXXXX")
UMCD_PID=
cleanup() {
    local rc=$?
    stop_pids "$UMCD_PID"
    if [ "$rc" -ne 0 ]; then
        echo "catalog.sh: failed (exit $rc); last lines of the umcd log:" >&2
        tail -n 20 "$TMP/umcd.log" 2>/dev/null >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# ------------------------------------------------------------------------------ the input
if [ -n "${PACKAGES_XZ:-}" ]; then
    cp "$PACKAGES_XZ" "$TMP/Packages.xz"
else
    # The mirror and suite of this machine's apt (main, amd64, not -updates/-security).
    read -r MIRROR SUITE < <(apt-cache policy 2>/dev/null |
        awk '$3 ~ /^[a-z]+\/main$/ && $4 == "amd64" { sub("/main", "", $3); print $2, $3; exit }') || true
    [ -n "${MIRROR:-}" ] || { echo "catalog.sh: no main amd64 source in apt-cache policy; set PACKAGES_XZ" >&2; exit 2; }
    log "downloading $SUITE main amd64 Packages.xz from the machine's mirror"
    curl -fsS -o "$TMP/Packages.xz" "$MIRROR/dists/$SUITE/main/binary-amd64/Packages.xz"
fi
SIZE=$(stat -c %s "$TMP/Packages.xz")
STANZAS=$(xz -dc "$TMP/Packages.xz" | grep -c '^Package:')
log "input: $SIZE bytes compressed, $STANZAS stanzas"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release -j1 --bin umcd --bin umc-admin
fi
UMCD=$ROOT/target/release/umcd
ADMIN=$ROOT/target/release/umc-admin

# --------------------------------------------------------------------------------- floor
best() { sort -n | head -n1; }
FLOOR=$(for _ in $(seq 1 "$RUNS"); do
    t0=$(now_ms); xz -dc "$TMP/Packages.xz" >/dev/null; t1=$(now_ms); echo $((t1 - t0))
done | best)
log "floor: xz -dc > /dev/null: $FLOOR ms"

# ---------------------------------------------------------------------------------- umcd
RUST_LOG=info "$UMCD" --listen 127.0.0.1:0 --data-dir "$TMP/data" >"$TMP/umcd.out" 2>"$TMP/umcd.log" &
UMCD_PID=$!
for _ in $(seq 1 100); do
    grep -q 'listening on' "$TMP/umcd.out" 2>/dev/null && break
    sleep 0.1
done
UMC_URL=$(sed -n 's/^umcd listening on //p' "$TMP/umcd.out")
[ -n "$UMC_URL" ] || { echo "catalog.sh: umcd did not start" >&2; exit 1; }
export UMC_URL UMC_TOKEN_FILE=$TMP/data/admin.token
TOKEN=$(tr -d '[:space:]' <"$UMC_TOKEN_FILE")
HWM_IDLE=$(awk '/^VmHWM:/ {print $2}' "/proc/$UMCD_PID/status")

IMPORT=$(for _ in $(seq 1 "$RUNS"); do
    t0=$(now_ms)
    "$ADMIN" catalog import bench --file "$TMP/Packages.xz" >/dev/null 2>"$TMP/admin.err"
    t1=$(now_ms); echo $((t1 - t0))
done | best)
HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$UMCD_PID/status")
PACKAGES=$("$ADMIN" catalog list --json | sed -n 's/.*"packages": \([0-9]*\).*/\1/p' | head -n1)
# The fastest run's server-side breakdown.
BREAKDOWN=$(grep -o 'fetch+parse [0-9]* ms, store [0-9]* ms, index [0-9]* ms' "$TMP/umcd.log" |
    awk '{ t = $2 + $5 + $8; if (best == "" || t < bt) { best = $0; bt = t } } END { print best }')

# ------------------------------------------------------------------------------- search
search_ms() { # term -> median and max latency (ms) over $SEARCHES requests
    for _ in $(seq 1 "$SEARCHES"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" \
            "$UMC_URL/api/v1/catalog/search?q=$1&limit=20"
    done | sort -n | awk '{ a[NR] = $1 } END { printf "median %.2f ms, max %.2f ms", a[int((NR + 1) / 2)] * 1000, a[NR] * 1000 }'
}

echo
echo "catalog import: $STANZAS stanzas, $PACKAGES distinct packages, $SIZE bytes of Packages.xz"
echo "floor (xz -dc > /dev/null):                 $FLOOR ms"
echo "umc-admin catalog import --file (end to end): $IMPORT ms  (ratio $(awk -v a="$IMPORT" -v b="$FLOOR" 'BEGIN { printf "%.2f", a / b }')x the floor)"
echo "  umcd breakdown (decompress+parse is 'parse'): $BREAKDOWN"
echo "umcd peak RSS (VmHWM): idle $HWM_IDLE KiB, after $RUNS imports $HWM KiB"
for term in nginx python3 server zzzzzz; do
    echo "search '$term' (HTTP round trip, limit 20): $(search_ms "$term")"
done
