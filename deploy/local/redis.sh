#!/usr/bin/env bash
# deploy/local/redis.sh: a Redis server for the local stack on
# 127.0.0.1:$CADENZA_REDIS_PORT. It is a cache and signal bus only, so
# nothing is persisted.
#
#   redis.sh start    start (no-op if running); waits for PING -> PONG
#   redis.sh stop     shut down
#   redis.sh status   exit 0 if running
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

REDIS_DIR="$CADENZA_STATE_DIR/redis"
REDIS_PID="$CADENZA_RUN_DIR/redis.pid"
REDIS_LOG="$CADENZA_LOG_DIR/redis.log"

redis_pid() { pid_alive "$REDIS_PID" "redis-server"; }

cli() { redis-cli -h 127.0.0.1 -p "$CADENZA_REDIS_PORT" "$@"; }

wait_pong() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ "$(cli ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.1
    done
    return 1
}

start() {
    local pid
    if pid="$(redis_pid)"; then
        wait_pong || die "Redis (pid $pid) does not answer PING"
        log "Redis already running (pid $pid) on 127.0.0.1:$CADENZA_REDIS_PORT"
        return 0
    fi
    command -v redis-server >/dev/null || die "redis-server not found (run deploy/local/install-deps.sh)"
    port_open "$CADENZA_REDIS_PORT" && die "port $CADENZA_REDIS_PORT is already in use by another process"
    ensure_state_dirs
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_PID"
    log "starting Redis on 127.0.0.1:$CADENZA_REDIS_PORT (log: $REDIS_LOG)"
    redis-server - >>"$REDIS_LOG" 2>&1 <<EOF
bind 127.0.0.1
port $CADENZA_REDIS_PORT
protected-mode yes
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_LOG
dir $REDIS_DIR
save ""
appendonly no
databases 16
EOF
    if ! wait_pong; then
        tail -n 20 "$REDIS_LOG" >&2 || true
        die "Redis failed to start"
    fi
    log "Redis ready: $CADENZA_REDIS_URL"
}

stop() {
    local pid i
    if ! pid="$(redis_pid)"; then
        rm -f "$REDIS_PID"
        log "Redis not running"
        return 0
    fi
    log "stopping Redis (pid $pid)"
    cli shutdown nosave >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
        proc_running "$pid" || break
        sleep 0.1
    done
    if proc_running "$pid"; then
        stop_pid "$pid" 30
    fi
    rm -f "$REDIS_PID"
}

status() {
    local pid
    if pid="$(redis_pid)"; then
        echo "redis: running (pid $pid) on 127.0.0.1:$CADENZA_REDIS_PORT"
    else
        echo "redis: stopped"
        return 1
    fi
}

case "${1:-}" in
    start|stop) serialize "$@" ;;
esac

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
