#!/usr/bin/env bash
# Install what Switchyard needs and is missing: Debian packages and the .venv.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# nftables: the egress rules (deployments/engine/egress.py) are a table of their own.
packages=(docker.io haproxy redis-server git busybox-static socat nftables)
# Compose image services are tested against a real registry: Debian's docker-registry, started by
# the test itself on 127.0.0.1 (tests/support/docker_registry.py), with htpasswd (apache2-utils);
# only for the tests (a server needs no registry of its own).
[ "${WITH_BROWSER:-0}" = 1 ] && packages+=(docker-registry apache2-utils)
# tests/web/test_access_keys_and_logins.py serves a private repository over a real sshd (per-app deploy keys).
packages+=(openssh-server)
# The browser test drives Debian's Chromium (Playwright's own browser download cannot work here).
[ "${WITH_BROWSER:-0}" = 1 ] && packages+=(chromium)
# The HTTPS tests run a real ACME server: Debian's pebble (with pebble-challtestsrv as its DNS).
[ "${WITH_BROWSER:-0}" = 1 ] && packages+=(pebble)
# `make stack-test` builds the compose stack's base image (debootstrap) and starts it with
# Debian's docker-compose.
[ "${WITH_STACK:-0}" = 1 ] && packages+=(debootstrap docker-compose pebble)
# `make multihost-test` simulates hosts: network namespaces (iproute2), a dockerd each started with
# nsenter (util-linux), one FORWARD rule (iptables), the image registry (docker-registry).
[ "${WITH_MULTIHOST:-0}" = 1 ] && packages+=(docker-registry iproute2 util-linux iptables)
# The benchmark reproduces Dokku's method with Debian's nginx; its WebSocket app is websocketd (static).
[ "${WITH_BENCH:-0}" = 1 ] && packages+=(nginx debootstrap docker-compose websocketd)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own init scripts would start services; `make run` starts them itself.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  echo "Installing Python packages from requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  sha256sum requirements.txt > "$stamp"
fi
if [ "${WITH_BENCH:-0}" = 1 ] && ! sha256sum --status -c .venv/.bench-requirements.sha256 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
  sha256sum bench/requirements.txt > .venv/.bench-requirements.sha256
fi
