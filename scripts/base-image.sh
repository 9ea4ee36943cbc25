#!/usr/bin/env bash
# The base image of the production stack (compose/), built from Debian's packages, since no
# image registry may be reachable: debootstrap a minimal bookworm and `docker import` it.
# Every image of the stack starts FROM it (SWITCHYARD_BASE_IMAGE). An existing image is kept;
# `docker rmi switchyard-base:bookworm` makes the next run build it again (about a minute).
set -euo pipefail
image=${SWITCHYARD_BASE_IMAGE:-switchyard-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
echo "Building the base image $image from Debian bookworm ($mirror)"
root=$(mktemp -d /tmp/switchyard-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
# Certificate authorities this host added to its own trust (a TLS-inspecting proxy's, a
# company's): the images' ca-certificates package takes them in, so pip and git work there too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
# As Debian's own images: no recommends, no documentation, no apt caches in the layers.
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90no-recommends"
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  >"$root/etc/dpkg/dpkg.cfg.d/90no-docs"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive' --change 'CMD ["/bin/bash"]' \
  --change 'LABEL switchyard.panel=base' - "$image" >/dev/null
echo "Built $image"
