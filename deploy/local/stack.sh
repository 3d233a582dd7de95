#!/usr/bin/env bash
# deploy/local/stack.sh: the whole local Cadenza stack: the backing services
# plus the project's own processes (API and scheduler), each in the
# background with its own log and pid file. The scheduler supervises the
# worker processes (CADENZA_SUPERVISE, scheduler/supervisor.c): as many per
# pool as the pool's desired replicas, restarted when they die; their pid
# files are run/worker-POOL.pid (slot 0) and run/worker-POOL-N.pid, their
# log logs/worker-POOL.log.
#
#   stack.sh up             services up, migrate, start the processes, wait for
#                           /healthz, write $CADENZA_STATE_DIR/env
#   stack.sh stop           stop the processes, then the services; all data is
#                           kept for the next up
#   stack.sh down           stop, then remove what up made: the state directory
#                           (databases, logs, artifacts) and the .cadenza symlink
#   stack.sh status         print everything; exit 0 only if all is running
#   stack.sh logs           follow the processes' logs
#   stack.sh restart-procs  stop and start only the project's processes
#
# Binaries come from $CADENZA_BIN_DIR (default <repo>/bin, built by make).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

: "${CADENZA_BIN_DIR:=$CADENZA_REPO_ROOT/bin}"
HEALTH_TIMEOUT=30
STOP_TIMEOUT=30

# name -> command line (binary and arguments)
PROC_NAMES=(api scheduler)
declare -A PROC_CMD=(
    [api]="cadenza-api"
    [scheduler]="cadenza-scheduler"
)
# Only the scheduler listens on the metrics address it is given; the workers
# it starts get their own (CADENZA_WORKER_METRICS_PORT_BASE).
declare -A PROC_ENV=(
    [api]=""
    [scheduler]="CADENZA_METRICS_LISTEN=127.0.0.1:$CADENZA_SCHED_METRICS_PORT"
)
WORKER_START_TIMEOUT=20

proc_pidfile() { printf '%s/%s.pid\n' "$CADENZA_RUN_DIR" "$1"; }
proc_log() { printf '%s/%s.log\n' "$CADENZA_LOG_DIR" "$1"; }
proc_pid() { pid_alive "$(proc_pidfile "$1")" "${PROC_CMD[$1]}"; }

need_binaries() {
    local b
    for b in cadenza-api cadenza-scheduler cadenza-worker; do
        [[ -x "$CADENZA_BIN_DIR/$b" ]] || die "$CADENZA_BIN_DIR/$b not found (run make first)"
    done
}

start_proc() {
    local name="$1" pid logf
    local -a cmd
    if pid="$(proc_pid "$name")"; then
        log "$name already running (pid $pid)"
        return 0
    fi
    read -r -a cmd <<<"${PROC_CMD[$name]}"
    logf="$(proc_log "$name")"
    printf '\n==== %s starting %s ====\n' "$(date -Is)" "${PROC_CMD[$name]}" >>"$logf"
    (cd "$CADENZA_REPO_ROOT" &&
        # shellcheck disable=SC2086 # PROC_ENV holds zero or more NAME=value words
        exec env ${PROC_ENV[$name]} nohup "$CADENZA_BIN_DIR/${cmd[0]}" "${cmd[@]:1}" \
            >>"$logf" 2>&1 </dev/null) &
    pid=$!
    printf '%s\n' "$pid" >"$(proc_pidfile "$name")"
    log "started $name (pid $pid, log $logf)"
}

start_procs() {
    local name
    need_binaries
    ensure_state_dirs
    for name in "${PROC_NAMES[@]}"; do
        start_proc "$name"
    done
    wait_healthy
    wait_workers
}

# The supervised pools' names, one a line.
supervised_pools() {
    tr ', ' '\n\n' <<<"${CADENZA_SUPERVISE:-}" | grep -v '^$' || true
}

# Prints "pidfile pid" for every live worker the scheduler started.
worker_pids() {
    local f pid
    for f in "$CADENZA_RUN_DIR"/worker-*.pid; do
        [[ -e "$f" ]] || continue
        if pid="$(pid_alive "$f" "cadenza-worker")"; then
            printf '%s %s\n' "$f" "$pid"
        fi
    done
}

# Waits until the scheduler has started the first worker of every
# supervised pool (tests read run/worker-POOL.pid right after `up`).
wait_workers() {
    local i pool missing
    for ((i = 0; i < WORKER_START_TIMEOUT * 4; i++)); do
        missing=""
        for pool in $(supervised_pools); do
            pid_alive "$CADENZA_RUN_DIR/worker-$pool.pid" "cadenza-worker" >/dev/null ||
                missing+=" $pool"
        done
        [[ -z "$missing" ]] && return 0
        sleep 0.25
    done
    log "warning: no worker running yet for:$missing (see $(proc_log scheduler))"
}

# Sends SIGTERM to all running processes at once, then waits for each.
stop_procs() {
    local name pid
    local -a pids=()
    for name in "${PROC_NAMES[@]}"; do
        if pid="$(proc_pid "$name")"; then
            log "stopping $name (pid $pid)"
            stop_pid "$pid" "$STOP_TIMEOUT" &
            pids+=($!)
        fi
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    for name in "${PROC_NAMES[@]}"; do
        rm -f "$(proc_pidfile "$name")"
    done
    # The scheduler drains its workers before it exits; any left (it was
    # killed, or they outlived it) are stopped here.
    pids=()
    local f
    while read -r f pid; do
        log "stopping worker $(basename "$f" .pid) (pid $pid)"
        stop_pid "$pid" "$STOP_TIMEOUT" &
        pids+=($!)
    done < <(worker_pids)
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    rm -f "$CADENZA_RUN_DIR"/worker-*.pid
}

wait_healthy() {
    local i pid
    for ((i = 0; i < HEALTH_TIMEOUT * 4; i++)); do
        if curl -fsS --max-time 2 -o /dev/null "$CADENZA_API_URL/healthz" 2>/dev/null; then
            log "API healthy at $CADENZA_API_URL"
            return 0
        fi
        pid="$(proc_pid api)" || break  # the API exited
        sleep 0.25
    done
    echo "---- tail of $(proc_log api) ----" >&2
    tail -n 40 "$(proc_log api)" >&2 || true
    die "API did not answer $CADENZA_API_URL/healthz"
}

# A file tests and shells can source to reach this stack.
write_env_file() {
    local f="$CADENZA_STATE_DIR/env" v
    {
        echo "# Generated by deploy/local/stack.sh up"
        for v in CADENZA_API_URL CADENZA_DATABASE_URL CADENZA_KAFKA_BROKERS \
            CADENZA_REDIS_URL CADENZA_ARTIFACT_DIR CADENZA_STATE_DIR CADENZA_HTTP_MODEL_PORT \
            CADENZA_HTTP_MODEL_URL CADENZA_HTTP_MODEL_TIMEOUT_S CADENZA_HTTP2_TIMEOUT_S \
            CADENZA_WEBHOOK_ALLOW \
            CADENZA_WEBHOOK_SCHEDULE CADENZA_SCHED_METRICS_URL \
            CADENZA_WORKER_METRICS_PORT_BASE; do
            printf 'export %s=%q\n' "$v" "${!v}"
        done
    } >"$f.tmp"
    mv "$f.tmp" "$f"
}

up() {
    need_binaries
    "$CADENZA_LOCAL_DIR/services.sh" up
    ensure_state_dirs
    log "applying migrations"
    (cd "$CADENZA_REPO_ROOT" && "$CADENZA_BIN_DIR/cadenza-api" migrate)
    start_procs
    write_env_file
    log "stack up: $CADENZA_API_URL (env: $CADENZA_STATE_DIR/env)"
}

stop() {
    stop_procs
    "$CADENZA_LOCAL_DIR/services.sh" down
}

# Removes only a directory that carries the marker ensure_state_dirs writes,
# so a CADENZA_STATE_DIR pointed at anything else is never deleted.
down() {
    local dir link="$CADENZA_REPO_ROOT/.cadenza" unlink=0
    stop
    dir="$(readlink -f -- "$CADENZA_STATE_DIR")"
    [[ -L "$link" && "$(readlink -f -- "$link")" == "$dir" ]] && unlink=1
    if [[ -e "$dir" ]]; then
        [[ -f "$dir/$CADENZA_STATE_MARKER" ]] ||
            die "not removing $dir: it has no $CADENZA_STATE_MARKER marker, so" \
                "the local stack did not make it (its services are stopped)"
        log "removing $dir"
        rm -rf -- "$dir"
    fi
    if ((unlink)); then rm -f -- "$link"; fi
}

status() {
    local rc=0 name pid
    "$CADENZA_LOCAL_DIR/services.sh" status || rc=1
    for name in "${PROC_NAMES[@]}"; do
        if pid="$(proc_pid "$name")"; then
            echo "$name: running (pid $pid)"
        else
            echo "$name: stopped"
            rc=1
        fi
    done
    local pool f pid
    for pool in $(supervised_pools); do
        pid_alive "$CADENZA_RUN_DIR/worker-$pool.pid" "cadenza-worker" >/dev/null || {
            echo "worker-$pool: none running"
            rc=1
        }
    done
    while read -r f pid; do
        echo "$(basename "$f" .pid): running (pid $pid)"
    done < <(worker_pids)
    return "$rc"
}

logs() {
    local -a files=()
    local name
    ensure_state_dirs
    for name in "${PROC_NAMES[@]}" $(supervised_pools | sed 's/^/worker-/'); do
        files+=("$(proc_log "$name")")
    done
    exec tail -n 20 -F "${files[@]}"
}

case "${1:-}" in
    up|stop|down|restart-procs) serialize "$@" ;;
esac

case "${1:-}" in
    up) up ;;
    stop) stop ;;
    down) down ;;
    status) status ;;
    logs) logs ;;
    restart-procs) stop_procs; start_procs ;;
    *) echo "usage: $0 up|stop|down|status|logs|restart-procs" >&2; exit 2 ;;
esac
