# HAProxy for the seed's method, from Debian's package on the locally built base (scripts/base-image.sh).
ARG BASE_IMAGE=switchyard-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends haproxy && rm -rf /var/lib/apt/lists/*
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/seed.cfg"]
