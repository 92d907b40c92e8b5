#!/usr/bin/env bash
# Template edit, end to end: how long an admin waits for umc to accept a new version of a
# template that 1,000 hosts share, against the classic way of shipping a config file change:
# rebuild 200 small packages with dpkg-deb and republish them with reprepro.
#
#   benches/template-edit.sh        # from anywhere; builds target/release first
#
# umc: umcd on 127.0.0.1 with a temporary data dir; one edit creates task `web` shipping
# /etc/nginx/conf.d/site.conf (benches/templates/site.conf.tera), the global variables and
# 1,000 nodes with their own variables. Timed: `umc-admin task file add web
# /etc/nginx/conf.d/site.conf --template FILE` with a new revision of the template, RUNS
# times. umcd renders the template for all 1,000 hosts before it commits (durably), so this
# is the whole cost of the edit. Building the debs happens later, per host, when each host
# fetches: the script then times the 1,000 hosts fetching their new InRelease (each a cold
# render of that host's repository), sequentially over one connection.
#
# Baseline: 200 package directories, each with one conffile; the packages are built and
# published once untimed, then each timed run changes every conffile, bumps the version,
# rebuilds the 200 .debs (`dpkg-deb --root-owner-group -b`, one after the other) and
# republishes them with one `reprepro includedeb` into the same repository, signed with an
# Ed25519 key from a temporary GNUPGHOME.
#
# Environment: RUNS (5), FLEET (1000), DEBS (200), SKIP_BUILD=1 to use the existing release
# binaries, SKIP_FETCH=1 to skip the 1,000 InRelease fetches.
#
# Needs: cargo, curl, jq, gpg, dpkg-deb and reprepro (`apt-get install -y reprepro`; a
# benchmark need only, not listed in .ci/packages). Listens on 127.0.0.1 only; what it
# starts (umcd, the temporary GNUPGHOME's gpg-agent) is stopped on exit, umcd by PID, and its
# temp dir is removed.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
FLEET=${FLEET:-1000}
DEBS=${DEBS:-200}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TEMPLATE=$ROOT/benches/templates/site.conf.tera
SITE=/etc/nginx/conf.d/site.conf

for tool in curl jq gpg gpgconf dpkg-deb reprepro; do
    command -v "$tool" >/dev/null || { echo "template-edit.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/umc-template-edit.XXXXXX")
UMCD_PID=
export GNUPGHOME=$TMP/gnupg

cleanup() {
    local rc=$?
    stop_pids "$UMCD_PID"
    # Only the agent of our own temporary GNUPGHOME.
    if [ -d "$GNUPGHOME" ]; then
        gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "template-edit.sh: failed (exit $rc); last lines of the logs:" >&2
        tail -n 20 "$TMP/umcd.log" "$TMP/reprepro.log" 2>/dev/null >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

# Median of the numbers on stdin (the lower middle one for an even count).
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Revision $1 of the site template: a comment line, and on odd revisions one more directive.
revision() {
    printf '# revision %s\n' "$1"
    if [ $(($1 % 2)) -eq 1 ]; then
        sed 's|^    root /srv/www/|    proxy_buffering off;\n&|' "$TEMPLATE"
    else
        cat "$TEMPLATE"
    fi
}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    cargo build --release -j1 --bin umcd --bin umc-admin
fi
UMCD=$ROOT/target/release/umcd
ADMIN=$ROOT/target/release/umc-admin

# ------------------------------------------------------------------------------------ umc
UMC_PORT=$(free_port)
UMC_BASE=http://127.0.0.1:$UMC_PORT
log "starting umcd on $UMC_BASE"
RUST_LOG=warn "$UMCD" --listen "127.0.0.1:$UMC_PORT" --data-dir "$TMP/data" >"$TMP/umcd.log" 2>&1 &
UMCD_PID=$!
wait_http "$UMC_BASE/healthz"
export UMC_URL=$UMC_BASE
export UMC_TOKEN_FILE=$TMP/data/admin.token
ADMIN_TOKEN=$(tr -d '[:space:]' <"$UMC_TOKEN_FILE")

log "one edit: task web with $SITE, global variables, $FLEET nodes with their own variables"
jq -n --rawfile tpl "$TEMPLATE" --argjson n "$FLEET" '{ops: ([
    {op: "var_set", vars: {
        collector_port: "4317", collectors: "10.1.0.21, 10.1.0.22, 10.2.0.21",
        datacenter: "fra1", log_level: "warn", max_body: "16m",
        monitor_from: "10.9.0.0/24,10.9.1.0/24", proxies: "10.0.0.2,10.0.0.3,10.0.1.2,10.0.1.3",
        resolvers: "10.0.0.53,10.0.1.53", site_domain: "shop.example.net",
        upstreams: "10.0.2.11:8080,10.0.2.12:8080,10.0.2.13:8080,10.0.2.14:8080",
        worker_connections: "4096"}},
    {op: "task_add", task: "web", description: "Web frontends"},
    {op: "task_depend", task: "web", relations: ["nginx-light"]},
    {op: "task_file_add", task: "web", path: "/etc/nginx/conf.d/site.conf", template: $tpl,
     mode: 420, reload: "nginx"}
] + [range(0; $n) as $i | ("n\($i).fleet.example.com") as $h |
    {op: "node_add", host: $h,
     vars: {weight: (($i % 5) + 1 | tostring), tls: (if $i % 2 == 0 then "on" else "off" end)}},
    {op: "assign", host: $h, tasks: ["web"]}
])}' >"$TMP/setup.json"
t0=$(now_ns)
curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary "@$TMP/setup.json" "$UMC_BASE/api/v1/edit" |
    jq -r '"generation \(.generation), \(.changes | length) change lines"' >&2
log "setup edit of $(stat -c %s "$TMP/setup.json") B took $(ms_since "$t0") ms"

PROBE=n7.fleet.example.com
: >"$TMP/umc.ms"
for k in $(seq 1 "$RUNS"); do
    revision "$k" >"$TMP/site-$k.tera"
    t0=$(now_ns)
    "$ADMIN" task file add web "$SITE" --template "$TMP/site-$k.tera" --reload nginx >/dev/null
    ms=$(ms_since "$t0")
    echo "$ms" >>"$TMP/umc.ms"
    first=$("$ADMIN" render "$PROBE" "$SITE" | head -n 1)
    [ "$first" = "# revision $k" ] || { echo "template-edit.sh: $PROBE renders '$first'" >&2; exit 1; }
    log "umc edit $k/$RUNS: $ms ms"
done
UMC_MEDIAN=$(median <"$TMP/umc.ms")

FETCH_MS=
if [ "${SKIP_FETCH:-0}" != 1 ]; then
    # Node tokens: one curl process, one URL per host.
    : >"$TMP/tokens.curl"
    for i in $(seq 0 $((FLEET - 1))); do
        printf 'url = "%s/api/v1/nodes/n%d.fleet.example.com/token"\n' "$UMC_BASE" "$i" >>"$TMP/tokens.curl"
    done
    curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -K "$TMP/tokens.curl" |
        jq -r '"\(.host) \(.token)"' >"$TMP/tokens.txt"
    [ "$(wc -l <"$TMP/tokens.txt")" -eq "$FLEET" ] || { echo "template-edit.sh: expected $FLEET tokens" >&2; exit 1; }
    first=1
    while read -r h tok; do
        [ "$first" = 1 ] || echo next
        first=0
        printf 'url = "%s/hosts/%s/dists/umc/InRelease"\nuser = "%s:%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
            "$UMC_BASE" "$h" "$h" "$tok"
    done <"$TMP/tokens.txt" >"$TMP/fetch.curl"
    log "$FLEET hosts fetch their new InRelease (cold renders)"
    t0=$(now_ns)
    curl -sS -K "$TMP/fetch.curl" >"$TMP/fetch.codes"
    FETCH_MS=$(ms_since "$t0")
    ok=$(grep -c '^200$' "$TMP/fetch.codes" || true)
    [ "$ok" -eq "$FLEET" ] || { echo "template-edit.sh: $ok of $FLEET fetches returned 200" >&2; exit 1; }
fi

# ------------------------------------------------------------------- dpkg-deb + reprepro
log "baseline: gpg key, $DEBS package directories, reprepro repository"
mkdir -p "$GNUPGHOME"
chmod 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'umc bench <bench@umc.invalid>' ed25519 sign never 2>/dev/null
FPR=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/ {print $10; exit}')
REPO=$TMP/repo
mkdir -p "$REPO/conf"
cat >"$REPO/conf/distributions" <<EOF
Codename: umc
Suite: umc
Architectures: amd64
Components: main
Description: template-edit baseline
SignWith: $FPR
EOF
PKGS=$TMP/pkgs
DEBDIR=$TMP/debs

# Writes package $1 at version 1.$2: a control file and one conffile.
write_pkg() {
    local name=cfg-$1 dir=$PKGS/cfg-$1
    mkdir -p "$dir/DEBIAN" "$dir/etc/nginx/conf.d"
    cat >"$dir/DEBIAN/control" <<EOF
Package: $name
Version: 1.$2
Architecture: all
Maintainer: umc bench <bench@umc.invalid>
Section: admin
Priority: optional
Depends: nginx-light
Description: site configuration of host $1
 Built by benches/template-edit.sh.
EOF
    echo "/etc/nginx/conf.d/$name.conf" >"$dir/DEBIAN/conffiles"
    sed "s|{{ host.name }}|h$1|g; s|{{ host.fqdn }}|h$1.fleet.example.com|g" "$TEMPLATE" |
        { printf '# revision %s\n' "$2"; cat; } >"$dir/etc/nginx/conf.d/$name.conf"
}

# Rebuilds all packages at revision $1 and republishes them; prints the wall time in ms.
publish() {
    local t0 i
    t0=$(now_ns)
    rm -rf "$DEBDIR"
    mkdir -p "$DEBDIR"
    for i in $(seq 1 "$DEBS"); do
        write_pkg "$i" "$1"
        dpkg-deb --root-owner-group -b "$PKGS/cfg-$i" "$DEBDIR/cfg-${i}_1.$1_all.deb" >/dev/null
    done
    reprepro -b "$REPO" --silent includedeb umc "$DEBDIR"/*.deb >>"$TMP/reprepro.log" 2>&1
    ms_since "$t0"
}

log "baseline: first publish (untimed): $(publish 0) ms"
: >"$TMP/reprepro.ms"
for k in $(seq 1 "$RUNS"); do
    ms=$(publish "$k")
    echo "$ms" >>"$TMP/reprepro.ms"
    n=$(grep -c "^Version: 1.$k\$" "$REPO/dists/umc/main/binary-amd64/Packages")
    [ "$n" -eq "$DEBS" ] || { echo "template-edit.sh: $n of $DEBS packages at 1.$k" >&2; exit 1; }
    gpg --batch --quiet --verify "$REPO/dists/umc/InRelease" 2>/dev/null ||
        { echo "template-edit.sh: InRelease does not verify" >&2; exit 1; }
    log "dpkg-deb + reprepro $k/$RUNS: $ms ms"
done
REPREPRO_MEDIAN=$(median <"$TMP/reprepro.ms")

# -------------------------------------------------------------------------------- report
echo
echo "template edit, $RUNS runs each, median wall time ($(nproc) CPUs):"
printf '  %-58s %7s ms   (runs: %s)\n' \
    "umc: task file add, $FLEET hosts validated, committed" "$UMC_MEDIAN" "$(paste -sd' ' "$TMP/umc.ms")" \
    "baseline: $DEBS x dpkg-deb -b + reprepro includedeb" "$REPREPRO_MEDIAN" "$(paste -sd' ' "$TMP/reprepro.ms")"
printf '  ratio umc/reprepro: %s\n' "$(awk -v a="$UMC_MEDIAN" -v b="$REPREPRO_MEDIAN" 'BEGIN{printf "%.3f", a/b}')"
if [ -n "$FETCH_MS" ]; then
    printf '  then %d hosts fetched their new InRelease (cold render each, one connection): %d ms\n' \
        "$FLEET" "$FETCH_MS"
fi
