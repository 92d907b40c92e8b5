# shellcheck shell=bash
# Shared helpers of the load scripts in benches/ (sourced, not run). Messages name the
# script that sourced this file.

log() { printf '== %s\n' "$*" >&2; }

# Stops the processes we started, by PID: TERM, a bounded wait for a clean exit, then KILL.
stop_pids() {
    local pid
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        kill -0 "$pid" 2>/dev/null || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# A TCP port on 127.0.0.1 nothing listens on (bounded number of tries).
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "${0##*/}: no free port found" >&2
    return 1
}

# Waits (bounded) until $1 answers at all (any HTTP status).
wait_http() {
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "${0##*/}: $1 did not come up" >&2
    return 1
}

# Converts wrk's "850.00us" / "1.23ms" / "1.02s" / "2.00m" to ms.
to_ms() {
    awk -v v="$1" -v me="${0##*/}" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) { print me ": unknown latency unit in " v > "/dev/stderr"; exit 1 }
        printf "%.3f\n", n * f
    }'
}

# Checks a wrk output file $1: no non-2xx answers, no socket errors (a timeout would drop a
# slow request from the latency distribution).
check_wrk() {
    if grep -qE 'Non-2xx|Socket errors' "$1"; then
        cat "$1" >&2
        echo "${0##*/}: errors in the wrk run above" >&2
        return 1
    fi
}

# Prints "<host> <base64 of host:token>" for hosts 1..$3 of umcd $1 (admin token $2), sorted;
# $4 names a function that sets $h to host number $1; $5 is a scratch directory. Four curl
# processes in parallel, each one keep-alive connection over its share of the hosts.
node_credentials() {
    local base=$1 admin=$2 fleet=$3 name_fn=$4 dir=$5 jobs=4 i j pid h
    for ((j = 0; j < jobs; j++)); do
        : >"$dir/tokens$j.curl"
    done
    for ((i = 1; i <= fleet; i++)); do
        "$name_fn" "$i"
        printf 'url = "%s/api/v1/nodes/%s/token"\n' "$base" "$h" >>"$dir/tokens$((i % jobs)).curl"
    done
    local pids=()
    for ((j = 0; j < jobs; j++)); do
        curl -fsS -H "Authorization: Bearer $admin" -K "$dir/tokens$j.curl" >"$dir/tokens$j.json" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    cat "$dir"/tokens[0-9]*.json | jq -r '"\(.host) \("\(.host):\(.token)" | @base64)"' | sort >"$dir/credentials.txt"
    if [ "$(wc -l <"$dir/credentials.txt")" -ne "$fleet" ]; then
        echo "${0##*/}: expected $fleet node tokens" >&2
        return 1
    fi
    cat "$dir/credentials.txt"
}

# POSTs the JSON file $1 to umcd's /api/v1/edit; prints the new generation. Uses the
# caller's $UMC_BASE and $ADMIN_TOKEN.
edit() {
    curl -fsS -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
        --data-binary "@$1" "$UMC_BASE/api/v1/edit" | jq -r .generation
}

# Sets $h to the name of host number $1 (no subshell: it runs 20,000 times).
host_name() { printf -v h 'h%05d.example.com' "$1"; }
