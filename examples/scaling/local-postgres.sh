#!/usr/bin/env bash
# A throwaway PostgreSQL server for trying the shared inbox on one machine, NOT for production:
# a fresh data directory ($TMPDIR/receiver-postgres, /tmp/receiver-postgres by default, or the
# DIR given), listening on 127.0.0.1 only (port $PGPORT, default 5432), password
# authentication (SCRAM) everywhere, fsync and synchronous_commit on (the defaults: the
# receiver's 200 means what it says). It makes a role `receiver` and its database `receiver`,
# with the password in $PGPASSWORD, so the receivers' URL is
# postgresql://receiver@127.0.0.1:5432/receiver.
#
#   export PGPASSWORD=...                        # the password of the role (and of the
#   examples/scaling/local-postgres.sh start     #   server's superuser `postgres`)
#   examples/scaling/local-postgres.sh stop      # stop it, keeping its data
#   examples/scaling/local-postgres.sh start     # start it again on the same data
#   examples/scaling/local-postgres.sh destroy   # stop it and delete its data directory
#
# It needs PostgreSQL's server programs: Debian's `postgresql` package (the newest
# /usr/lib/postgresql/NN/bin is used), or pg_ctl and initdb on PATH. PostgreSQL refuses to run
# as root: as root, the server runs as the package's `postgres` user.
set -euo pipefail

action=${1:-}
dir=${2:-${TMPDIR:-/tmp}/receiver-postgres}
port=${PGPORT:-5432}

usage() {
    echo "usage: PGPASSWORD=... $0 start|stop|destroy [DIR]" >&2
    exit 2
}

bindir() {
    local newest
    newest=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
        echo "$newest"
    elif command -v initdb >/dev/null; then
        dirname "$(command -v initdb)"
    else
        echo "no PostgreSQL server programs: apt-get install postgresql" >&2
        exit 1
    fi
}

# as_owner COMMAND...: run COMMAND as the server's user (`postgres` when we are root), from a
# folder that user may enter.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && setpriv --reuid postgres --regid postgres --init-groups -- "$@")
    else
        "$@"
    fi
}

start() {
    local bin
    bin=$(bindir)
    if [ -d "$dir/data" ]; then  # made before: start it again
        as_owner env LC_ALL=C TZ=UTC "$bin/pg_ctl" start --pgdata "$dir/data" --wait \
            --log "$dir/postgres.log" >/dev/null
        echo "PostgreSQL on 127.0.0.1:$port again (data $dir/data)"
        return
    fi
    [ -n "${PGPASSWORD:-}" ] || { echo "set PGPASSWORD first: the password to create" >&2; exit 2; }
    [ ! -e "$dir" ] || { echo "$dir exists but holds no server: remove it" >&2; exit 1; }
    mkdir -m 700 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"
    # The password reaches initdb in a file only the server's user reads, never a command line.
    (umask 077 && printf '%s\n' "$PGPASSWORD" >"$dir/pwfile")
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir/pwfile"
    as_owner env LC_ALL=C TZ=UTC "$bin/initdb" --pgdata "$dir/data" --username postgres \
        --pwfile "$dir/pwfile" --auth scram-sha-256 --encoding UTF8 --locale C \
        --no-instructions >"$dir/initdb.log"
    rm -f "$dir/pwfile"
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
EOF
    as_owner env LC_ALL=C TZ=UTC "$bin/pg_ctl" start --pgdata "$dir/data" --wait \
        --log "$dir/postgres.log" >/dev/null
    # psql reads the password from PGPASSWORD; :'password' quotes it as an SQL literal.
    "$bin/psql" --no-psqlrc --quiet --set ON_ERROR_STOP=1 --set password="$PGPASSWORD" \
        "postgresql://postgres@127.0.0.1:$port/postgres" <<'SQL'
CREATE ROLE receiver LOGIN PASSWORD :'password';
CREATE DATABASE receiver OWNER receiver;
SQL
    echo "PostgreSQL on 127.0.0.1:$port (data $dir/data, log $dir/postgres.log):"
    echo "  postgresql://receiver@127.0.0.1:$port/receiver  (password: \$PGPASSWORD)"
}

# Fast shutdown: clients are disconnected, everything committed is kept.
stop() {
    [ -d "$dir/data" ] || { echo "no server in $dir" >&2; exit 1; }
    as_owner "$(bindir)/pg_ctl" stop --pgdata "$dir/data" --mode fast --wait >/dev/null
    echo "PostgreSQL stopped (data kept in $dir/data)"
}

destroy() {
    [ -d "$dir/data" ] || { echo "no server in $dir" >&2; exit 1; }
    as_owner "$(bindir)/pg_ctl" stop --pgdata "$dir/data" --mode fast --wait >/dev/null 2>&1 || true
    rm -rf "$dir"
    echo "PostgreSQL stopped; $dir deleted"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    destroy) destroy ;;
    *) usage ;;
esac
