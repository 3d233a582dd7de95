#!/usr/bin/env bash
# Checks that all SQL lives in common/db/ (one file per table group, see
# common/db/db.h): no C file of the product outside it may hold a statement
# or run one. `make check-sql` runs it, and `make test` runs that.
#
# It reads every *.c and *.h under api/ scheduler/ workers/ cli/ common/,
# except common/db/, and reports, as file:line, each
#   - C string literal that begins with an SQL command (SELECT, INSERT,
#     UPDATE, DELETE, WITH, COPY, LISTEN, NOTIFY, BEGIN, COMMIT, ROLLBACK,
#     SAVEPOINT, SET, CREATE, ...), written in capitals as our SQL is;
#   - literal that holds an SQL clause (INSERT INTO t, DELETE FROM t,
#     FROM t, JOIN t, ON CONFLICT, RETURNING) or a pg_*() function call;
#   - call that runs a statement (cz_db_query, cz_db_exec, PQexec*,
#     PQprepare, PQsendQuery*, PQputCopyData).
# Comment lines are skipped. Redis commands share some verbs with SQL
# (SET, SELECT), so a literal on a line that calls redis*Command is not SQL;
# nor is an HTTP method (DELETE) on a line that sets libcurl's
# CURLOPT_CUSTOMREQUEST.
# Prose is not flagged: the keywords must be in capitals at the start of the
# literal ("Select a pool" is not SQL), and clauses need a lower-case table.
#
# Exit status: 0 when clean, 1 with the offending lines listed.
set -euo pipefail

cd "$(dirname "$0")/.."

dirs=()
for d in api scheduler workers cli common; do
    [ -d "$d" ] && dirs+=("$d")
done
keywords='SELECT|INSERT|UPDATE|DELETE|WITH|MERGE|COPY|LISTEN|UNLISTEN|NOTIFY|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|CREATE|ALTER|DROP|TRUNCATE|VACUUM|ANALYZE|SET|RESET|LOCK|EXPLAIN|PREPARE|EXECUTE|DEALLOCATE|DECLARE|FETCH|GRANT|REVOKE|CALL|REFRESH|REINDEX|CLUSTER|DISCARD'
# A literal starting with a command word, followed by a space, the end of
# the literal, ';' or '(' (so "SETTINGS" or "COPYRIGHT" are not commands).
starts="(?<!\\\\)\"\\s*(${keywords})(?=[\\s\";(]|\$)"
# A clause with a lower-case table name after it, or a pg_*() call, anywhere
# in a literal. "FROM the master" is English: a few such words are not
# taken for a table.
english='(the|a|an|this|that|these|those|its|it|their|them|our|your|one|each|every|any|all|some|no|there|here|which|what|where|when)\b'
clause="\"[^\"]*\\b(FROM|JOIN|INTO|UPDATE) (?!${english})[a-z_][a-z0-9_]*|\"[^\"]*\\b(ON CONFLICT|RETURNING [a-z*0-9])|\"[^\"]*\\bpg_[a-z_]+\\("
# Calls that run SQL: only common/db/ may make them.
calls='\b(cz_db_query|cz_db_exec|PQexec|PQexecParams|PQexecPrepared|PQprepare|PQsendQuery|PQsendQueryParams|PQsendPrepare|PQputCopyData)\s*\('

mapfile -t files < <(find "${dirs[@]}" -path common/db -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print | sort)

hits=$(
    grep -nHP "${starts}|${clause}|${calls}" "${files[@]}" /dev/null |
        grep -vP '^[^:]+:\d+:\s*(//|/\*|\*)' |
        grep -vP 'redis[A-Za-z]*Command\s*\(' |
        grep -vP 'CURLOPT_CUSTOMREQUEST' || true
)

if [ -n "$hits" ]; then
    n=$(printf '%s\n' "$hits" | wc -l)
    printf '%s\n' "$hits" | sed -E 's/^([^:]+:[0-9]+):[[:space:]]*/\1: SQL outside common\/db\/: /' >&2
    echo "check-sql: $n line(s) hold or run SQL outside common/db/: move each statement into" \
        "a cz_db_<group>_<verb> function in its table group's file (common/db/db.h says which)" >&2
    exit 1
fi
echo "check-sql: no SQL outside common/db/"
