# deploy/local/env.sh: settings shared by the local stack scripts.
# Source it (". deploy/local/env.sh"). The state directory, ports, partition
# count and soundfont can be overridden from the environment; the URLs and
# directories are derived from them. Everything listens on 127.0.0.1 only.
# shellcheck shell=bash

CADENZA_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CADENZA_REPO_ROOT="$(cd "$CADENZA_LOCAL_DIR/../.." && pwd)"

# Where this checkout keeps its state unless CADENZA_STATE_DIR says otherwise:
# normally <checkout>/.cadenza. Postgres refuses to run as root, so as root
# the scripts run it as the postgres user, and that user cannot reach a
# checkout below a directory others may not enter (a clone in /root, which is
# 0700). Such a checkout keeps its state in /var/lib/cadenza/<name>-<first 12
# hex of the sha256 of its real path>, so two checkouts never share one, and
# ensure_state_dirs makes <checkout>/.cadenza a symlink to it, so that
# `.cadenza/env` works the same from any clone.
checkout_state_dir() {
    local real d
    real="$(cd -P "$CADENZA_REPO_ROOT" && pwd)"
    if [[ $EUID -eq 0 ]]; then
        # Climb while others may search the directory (o+x; "t" is o+x with
        # the sticky bit); reaching past / means the postgres user gets in.
        d="$real"
        while [[ -n "$d" && "$(stat -c %A "$d")" == *[xt] ]]; do
            d="${d%/*}"
        done
        if [[ -n "$d" ]]; then
            printf '/var/lib/cadenza/%s-%s\n' "${real##*/}" \
                "$(printf '%s' "$real" | sha256sum | cut -c1-12)"
            return
        fi
    fi
    printf '%s\n' "$CADENZA_REPO_ROOT/.cadenza"
}
CADENZA_CHECKOUT_STATE_DIR="$(checkout_state_dir)"
# The file that marks a directory as a state directory the scripts made; only
# such a directory is ever removed (stack.sh down).
CADENZA_STATE_MARKER=.cadenza-state

# Overridable settings.
: "${CADENZA_STATE_DIR:=$CADENZA_CHECKOUT_STATE_DIR}"
: "${CADENZA_PG_PORT:=55432}"
: "${CADENZA_REDIS_PORT:=56379}"
: "${CADENZA_KAFKA_PORT:=59092}"
: "${CADENZA_KAFKA_CONTROLLER_PORT:=59093}"
: "${CADENZA_API_PORT:=58080}"
: "${CADENZA_KAFKA_PARTITIONS:=8}"
# The local stack notices a lost worker sooner than production (120 s) and
# retries sooner (production: 2 s base), so failures show within a test run.
: "${CADENZA_LEASE_S:=15}"
: "${CADENZA_RETRY_BASE_MS:=500}"
# http@1's model server: nothing listens there unless a test (or you) starts
# one; tests/reference_model.py is the reference. Next to the API's port so
# that two stacks on one machine never share it.
: "${CADENZA_HTTP_MODEL_PORT:=$((CADENZA_API_PORT + 1))}"
: "${CADENZA_HTTP_MODEL_TIMEOUT_S:=8}"
# http@2 calls the same server (CADENZA_HTTP2_MODEL_URL defaults to
# CADENZA_HTTP_MODEL_URL; tests/reference_model.py serves both contracts).
# One prediction may take a minute here (production default: 900 s).
: "${CADENZA_HTTP2_TIMEOUT_S:=60}"
# Webhooks: the local stack's receivers are test servers on loopback, so
# loopback is allow-listed here (production allows public addresses only),
# and retries come seconds apart instead of the production schedule's
# minutes and hours (0,5s,5m,30m,2h,5h,10h,10h), so a test sees them.
: "${CADENZA_WEBHOOK_ALLOW:=127.0.0.0/8,::1/128}"
: "${CADENZA_WEBHOOK_SCHEDULE:=0,1s,2s,4s,8s,15s,30s,60s}"
# The pools whose worker processes the scheduler runs (scheduler/supervisor.c).
: "${CADENZA_SUPERVISE:=inference,post}"
# /metrics listeners beside the API's port: the scheduler's, and the workers'
# (slot i of the k-th supervised pool on base + 64k + i; see
# docs/operations.md). The API serves /metrics on its own port.
: "${CADENZA_SCHED_METRICS_PORT:=$((CADENZA_API_PORT + 3))}"
: "${CADENZA_WORKER_METRICS_PORT_BASE:=$((CADENZA_API_PORT + 100))}"
CADENZA_SCHED_METRICS_URL="http://127.0.0.1:$CADENZA_SCHED_METRICS_PORT"
# The autoscaler looks every second locally (production: every 5 s).
: "${CADENZA_AUTOSCALE_INTERVAL_MS:=1000}"
# Playlists: new tracks are read every half second and the scheduler's
# precompute round comes every 2 s locally (production: 2 s and 30 s).
: "${CADENZA_PLAYLIST_SYNC_MS:=500}"
: "${CADENZA_PLAYLIST_REFRESH_S:=2}"
case "$CADENZA_STATE_DIR" in
    /*) ;;
    *) CADENZA_STATE_DIR="$PWD/$CADENZA_STATE_DIR" ;;
esac

# Derived from the above (always recomputed, so a changed port or state
# directory can never be paired with a stale URL).
CADENZA_DATABASE_URL="postgresql://postgres@127.0.0.1:$CADENZA_PG_PORT/cadenza"
CADENZA_KAFKA_BROKERS="127.0.0.1:$CADENZA_KAFKA_PORT"
CADENZA_REDIS_URL="redis://127.0.0.1:$CADENZA_REDIS_PORT/0"
CADENZA_API_URL="http://127.0.0.1:$CADENZA_API_PORT"
CADENZA_API_LISTEN="127.0.0.1:$CADENZA_API_PORT"
CADENZA_ARTIFACT_DIR="$CADENZA_STATE_DIR/artifacts"
CADENZA_LOG_DIR="$CADENZA_STATE_DIR/logs"
CADENZA_RUN_DIR="$CADENZA_STATE_DIR/run"
CADENZA_HTTP_MODEL_URL="http://127.0.0.1:$CADENZA_HTTP_MODEL_PORT"
: "${CADENZA_SOUNDFONT:=/usr/share/sounds/sf2/FluidR3_GM.sf2}"

export CADENZA_STATE_DIR CADENZA_PG_PORT CADENZA_REDIS_PORT CADENZA_KAFKA_PORT \
    CADENZA_KAFKA_CONTROLLER_PORT CADENZA_API_PORT CADENZA_KAFKA_PARTITIONS \
    CADENZA_DATABASE_URL CADENZA_KAFKA_BROKERS CADENZA_REDIS_URL \
    CADENZA_API_URL CADENZA_API_LISTEN CADENZA_ARTIFACT_DIR CADENZA_SOUNDFONT \
    CADENZA_LOG_DIR CADENZA_RUN_DIR CADENZA_LEASE_S CADENZA_RETRY_BASE_MS \
    CADENZA_HTTP_MODEL_PORT CADENZA_HTTP_MODEL_URL CADENZA_HTTP_MODEL_TIMEOUT_S \
    CADENZA_HTTP2_TIMEOUT_S CADENZA_WEBHOOK_ALLOW CADENZA_WEBHOOK_SCHEDULE \
    CADENZA_SUPERVISE CADENZA_AUTOSCALE_INTERVAL_MS CADENZA_SCHED_METRICS_PORT \
    CADENZA_SCHED_METRICS_URL CADENZA_WORKER_METRICS_PORT_BASE \
    CADENZA_PLAYLIST_SYNC_MS CADENZA_PLAYLIST_REFRESH_S

# ---- helpers for the scripts in this directory ----

log() { printf '[%s] %s\n' "${0##*/}" "$*"; }
die() { printf '[%s] error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Creates the state, log and run directories. They stay world-traversable
# (0755) so that the postgres user can reach its data directory when the
# scripts run as root. Every script makes the state through here: this
# checkout's own state directory, and any it creates, gets the marker, and a
# state directory outside the checkout (checkout_state_dir) gets the
# checkout's .cadenza symlink.
ensure_state_dirs() {
    local link="$CADENZA_REPO_ROOT/.cadenza"
    local own=0
    [[ "$CADENZA_STATE_DIR" == "$CADENZA_CHECKOUT_STATE_DIR" ]] && own=1
    if ((own)) && [[ "$CADENZA_STATE_DIR" != "$link" ]]; then
        mkdir -p "${CADENZA_STATE_DIR%/*}"
        chmod 0755 "${CADENZA_STATE_DIR%/*}"
        # A .cadenza directory left by a run before the state moved out
        # (it could not start Postgres) moves there, with its Kafka jars.
        if [[ -d "$link" && ! -L "$link" && ! -e "$CADENZA_STATE_DIR" ]]; then
            mv -T "$link" "$CADENZA_STATE_DIR"
        fi
        [[ -L "$link" || ! -e "$link" ]] ||
            die "$link is in the way of a symlink to this checkout's state," \
                "$CADENZA_STATE_DIR; move it away"
        [[ "$(readlink "$link")" == "$CADENZA_STATE_DIR" ]] ||
            ln -sfn "$CADENZA_STATE_DIR" "$link"
    fi
    if ((own)) || [[ ! -e "$CADENZA_STATE_DIR" ]]; then
        mkdir -p "$CADENZA_STATE_DIR"
        [[ -e "$CADENZA_STATE_DIR/$CADENZA_STATE_MARKER" ]] ||
            printf 'Cadenza local stack state of %s\n' "$CADENZA_REPO_ROOT" \
                >"$CADENZA_STATE_DIR/$CADENZA_STATE_MARKER"
    fi
    mkdir -p "$CADENZA_STATE_DIR" "$CADENZA_LOG_DIR" "$CADENZA_RUN_DIR" \
        "$CADENZA_ARTIFACT_DIR"
    chmod 0755 "$CADENZA_STATE_DIR" "$CADENZA_LOG_DIR" "$CADENZA_RUN_DIR"
}

# Re-runs the calling script under an exclusive lock named after it, so that
# concurrent invocations (parallel test runners) take turns. flock -o keeps
# the lock in the flock process, so background services started by the
# script do not inherit it.
serialize() {
    local name="${0##*/}"
    name="${name%.sh}"
    [[ ":${CADENZA_LOCKS_HELD:-}:" == *":$name:"* ]] && return 0
    ensure_state_dirs
    export CADENZA_LOCKS_HELD="${CADENZA_LOCKS_HELD:+$CADENZA_LOCKS_HELD:}$name"
    exec flock -o -w 600 "$CADENZA_RUN_DIR/$name.lock" "$BASH" "$0" "$@"
}

# True if a TCP port on 127.0.0.1 accepts connections.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if the process exists and is not a zombie waiting to be reaped.
proc_running() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)"
    [[ -n "$state" && "$state" != Z ]]
}

# Prints the pid recorded in a pid file if that process is alive and its
# command line contains the given pattern (guards against reused pids).
pid_alive() {
    local pidfile="$1" pattern="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(head -n1 "$pidfile" 2>/dev/null | tr -dc '0-9')"
    [[ -n "$pid" ]] || return 1
    proc_running "$pid" || return 1
    if [[ -n "$pattern" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    fi
    printf '%s\n' "$pid"
}

# Sends SIGTERM, waits up to $2 seconds (default 30) for the process to exit,
# then sends SIGKILL.
stop_pid() {
    local pid="$1" timeout="${2:-30}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        proc_running "$pid" || return 0
        sleep 0.1
    done
    log "pid $pid still running after ${timeout}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        proc_running "$pid" || return 0
        sleep 0.1
    done
}
