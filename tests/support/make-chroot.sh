#!/bin/sh
# Build (once) a debootstrap'd Debian bookworm minbase chroot for install tests and
# cache it. The mirror is read from this machine's own apt configuration at run time,
# so no mirror host name lives in the repository.
#
# usage: make-chroot.sh [CACHE_DIR]     prints the path of the ready chroot
set -eu

suite=bookworm
cache=${1:-${UMC_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/umc-tests}}
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

mirror=$(apt-cache policy 2>/dev/null |
    awk -v s="$suite/main" '$3 == s && $4 ~ /^(amd64|arm64|all)$/ { print $2; exit }')
if [ -z "$mirror" ]; then
    # Fall back to the first deb822/one-line source that is not a security or update suite.
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
