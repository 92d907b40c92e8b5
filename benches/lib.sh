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
