#!/bin/sh
# Build (once) a debootstrap'd Debian minbase chroot of SUITE (bookworm, or trixie for apt 3)
# for install tests and cache it, one directory per suite. The mirror is read from this
# machine's own apt configuration at run time, so no mirror host name lives in the repository.
#
# usage: make-chroot.sh [SUITE [CACHE_DIR]]     prints the path of the ready chroot
set -eu

suite=${1:-bookworm}
case "$suite" in
    *[!a-z]* | '') echo "make-chroot: '$suite' is not a Debian suite name" >&2; exit 2 ;;
esac
cache=${2:-${UMC_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umc-tests}}
# Bump the suffix when the package set changes, so a stale cache is not reused.
root="$cache/$suite-minbase-2"

if [ -f "$root/.umc-ready" ]; then
    echo "$root"
    exit 0
fi

# Tests that start in parallel each call this; one builds, the others wait and reuse it
# (two debootstraps into one directory break each other's Release signature check).
mkdir -p "$cache"
exec 9>"$cache/.$suite.lock"
flock 9
if [ -f "$root/.umc-ready" ]; then
    echo "$root"
    exit 0
fi

# The mirror this machine's apt takes SUITE from; else the one it takes its own release from
# (a Debian mirror carries every suite); else the first source that is not a security one.
policy=$(apt-cache policy 2>/dev/null || true)
mirror=$(echo "$policy" |
    awk -v s="$suite/main" '$3 == s && $4 ~ /^(amd64|arm64|all)$/ { print $2; exit }')
if [ -z "$mirror" ]; then
    mirror=$(echo "$policy" |
        awk '$3 ~ /^[a-z]+\/main$/ && $4 ~ /^(amd64|arm64|all)$/ { print $2; exit }')
fi
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '(URIs:|^deb) +[a-z]+://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -v security | head -n1)
fi
[ -n "$mirror" ] || { echo "make-chroot: no Debian mirror found in this machine's apt sources" >&2; exit 1; }

rm -rf "$root.tmp"
debootstrap --variant=minbase --include=curl "$suite" "$root.tmp" "$mirror" >&2
# Services must never start inside the chroot (nginx's postinst would bind the host's port 80).
printf '#!/bin/sh\nexit 101\n' > "$root.tmp/usr/sbin/policy-rc.d"
chmod 0755 "$root.tmp/usr/sbin/policy-rc.d"
rm -rf "$root"
mv "$root.tmp" "$root"
touch "$root/.umc-ready"
echo "$root"
