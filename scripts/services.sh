#!/usr/bin/env bash
# Start the system services Switchyard relies on if they are not running:
# the Docker daemon, and (unless NO_REDIS=1) Redis on REDIS_URL's default port.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$what did not come up within ${seconds}s" >&2; return 1
}

if ! docker info >/dev/null 2>&1; then
  echo "Starting the Docker daemon (log: var/dockerd.log)"
  setsid nohup dockerd >var/dockerd.log 2>&1 < /dev/null &
  wait_for 30 "dockerd" docker info || { tail -20 var/dockerd.log >&2; exit 1; }
fi

if [ "${NO_REDIS:-0}" != 1 ] && ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --dir "$PWD/var" \
    --logfile "$PWD/var/redis.log" >/dev/null
  wait_for 10 "redis-server" redis-cli -p 6379 ping
fi
