#!/bin/sh
# First start: a cluster owned by the OS user postgres, whose superuser is $POSTGRES_USER with
# $POSTGRES_PASSWORD (scram-sha-256 over TCP), and the database $POSTGRES_DB. Then, and on every
# later start, the server in the foreground as PID 1 (setpriv execs it, where runuser would stay
# the parent), so `docker stop`'s SIGINT reaches it: a fast, clean shutdown.
set -eu
: "${POSTGRES_USER:?set it}" "${POSTGRES_PASSWORD:?set it}" "${POSTGRES_DB:?set it}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  password_file=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
  chown postgres "$password_file"
  runuser -u postgres -- initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$password_file" \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" |
    runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
  echo "postgres-entrypoint: created the cluster and the database $POSTGRES_DB"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*'
