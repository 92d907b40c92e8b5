#!/usr/bin/env bash
# Fan-out speed of `umc-admin ssh all -- true` against N sshd "hosts" on 127.0.0.1 (own port and
# host key each), compared in the same run with parallel-ssh (Debian's pssh) at the same
# parallelism, and with Ansible's ad-hoc raw module when `ansible` is on PATH. Also reports
# umc-admin's peak RSS.
#
# usage: benches/fleet-ssh.sh [N]          (default 50; RUNS=5 timed runs of each tool)
# needs: root (sshd), openssh-server, openssh-client, pssh, GNU time; a release build is made.
# Every process it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-50}
runs=${RUNS:-5}
base=${BASE_PORT:-42200}

for tool in /usr/sbin/sshd ssh-keygen parallel-ssh /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "fleet-ssh: $tool is missing" >&2; exit 1; }
done

cargo build --release --bins -q
bin=$PWD/target/release

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p /run/sshd "$work/home"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/id"
cp "$work/id.pub" "$work/authorized_keys"

"$bin/umcd" --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/umcd.out" 2>"$work/umcd.log" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/umcd.out" && break; sleep 0.05; done
UMC_URL=$(sed -n 's/^umcd listening on //p' "$work/umcd.out")
export UMC_URL UMC_TOKEN_FILE="$work/data/admin.token"
export HOME="$work/home" UMC_KNOWN_HOSTS="$work/known_hosts"
unset SSH_AUTH_SOCK

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

: >"$work/hosts"
port=$base
for i in $(seq "$n"); do
    while ! port_free "$port"; do port=$((port + 1)); done
    d="$work/sshd$i"
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$d/host_key"
    cat >"$d/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile none
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 200
LogLevel ERROR
EOF
    /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
    pids+=($!)
    "$bin/umc-admin" node add "h$i.bench.example" --ssh "root@127.0.0.1:$port" >/dev/null
    echo "root@127.0.0.1:$port" >>"$work/hosts"
    port=$((port + 1))
done
while read -r h; do
    p=${h##*:}
    for _ in $(seq 200); do port_free "$p" || break; sleep 0.05; done
done <"$work/hosts"

# Record the host keys once (umc-admin's file is OpenSSH's format: pssh uses it as is).
"$bin/umc-admin" ssh all -i "$work/id" --accept-new --parallel "$n" -- true >/dev/null

ssh_opts=(-O "UserKnownHostsFile=$work/known_hosts" -O StrictHostKeyChecking=yes
    -O "IdentityFile=$work/id" -O IdentitiesOnly=yes -O BatchMode=yes)

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

umc_times=()
pssh_times=()
for _ in $(seq "$runs"); do
    t0=$(now)
    "$bin/umc-admin" ssh all -i "$work/id" --parallel "$n" --json -- true >/dev/null
    t1=$(now)
    parallel-ssh -h "$work/hosts" -p "$n" -t 60 "${ssh_opts[@]}" true >/dev/null
    t2=$(now)
    umc_times+=("$(elapsed "$t0" "$t1")")
    pssh_times+=("$(elapsed "$t1" "$t2")")
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
umc=$(median "${umc_times[@]}")
pssh=$(median "${pssh_times[@]}")

/usr/bin/time -f '%M' -o "$work/rss" \
    "$bin/umc-admin" ssh all -i "$work/id" --parallel "$n" --json -- true >/dev/null

echo "hosts: $n, parallelism: $n, runs: $runs (median wall time)"
echo "umc-admin ssh all -- true:   ${umc}s   (runs: ${umc_times[*]})"
echo "parallel-ssh -p $n true:      ${pssh}s   (runs: ${pssh_times[*]})"
echo "ratio umc-admin / pssh:      $(echo "scale=2; $umc / $pssh" | bc)"
echo "umc-admin peak RSS:          $(cat "$work/rss") KiB"

if command -v ansible >/dev/null; then
    {
        echo "[fleet]"
        i=0
        while read -r h; do
            i=$((i + 1))
            echo "h$i ansible_host=127.0.0.1 ansible_port=${h##*:} ansible_user=root"
        done <"$work/hosts"
    } >"$work/inventory"
    a_times=()
    for _ in $(seq "$runs"); do
        t0=$(now)
        LC_ALL=C.UTF-8 ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$work/known_hosts -o ControlMaster=no" \
            ansible all -i "$work/inventory" -f "$n" -m raw -a true --private-key "$work/id" >/dev/null
        a_times+=("$(elapsed "$t0" "$(now)")")
    done
    echo "ansible -f $n -m raw true:    $(median "${a_times[@]}")s   (runs: ${a_times[*]})"
else
    echo "ansible: not installed (pip install ansible-core), skipped"
fi
