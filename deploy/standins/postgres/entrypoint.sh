#!/bin/sh
# Entrypoint of the postgres:15 TEST STAND-IN (see Containerfile): on an empty
# $PGDATA, creates the cluster with POSTGRES_USER / POSTGRES_PASSWORD and the
# database POSTGRES_DB, then runs the server as the postgres user.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

as_postgres() {
  setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "postgres stand-in: POSTGRES_PASSWORD must be set" >&2
      exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
      --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
      quoted=$(printf '%s' "$db" | sed 's/"/""/g')
      printf 'CREATE DATABASE "%s";\n' "$quoted" |
        as_postgres postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    echo "postgres stand-in: created the cluster in $PGDATA (user $user, database $db)"
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi

exec "$@"
