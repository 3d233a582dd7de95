#!/usr/bin/env bash
# deploy/local/services.sh: the three backing services of the local stack
# (Postgres, Redis, Kafka) together.
#
#   services.sh up       install what is missing, then start all three
#   services.sh down     stop all three (their data is kept)
#   services.sh status   print each; exit 0 only if all three are running
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

here="$CADENZA_LOCAL_DIR"

up() {
    "$here/install-deps.sh"
    "$here/postgres.sh" start
    "$here/redis.sh" start
    "$here/kafka.sh" start
}

down() {
    local rc=0
    "$here/kafka.sh" stop || rc=1
    "$here/redis.sh" stop || rc=1
    "$here/postgres.sh" stop || rc=1
    return "$rc"
}

status() {
    local rc=0
    "$here/postgres.sh" status || rc=1
    "$here/redis.sh" status || rc=1
    "$here/kafka.sh" status || rc=1
    return "$rc"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
