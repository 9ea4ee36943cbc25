# Redis from Debian's package, on the locally built base (scripts/base-image.sh).
ARG BASE_IMAGE=switchyard-base:bookworm
FROM ${BASE_IMAGE}
# Apps' builds may not start from the panel's images, whatever they are tagged (dockerfile/base_images.py).
LABEL switchyard.panel=redis
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
EXPOSE 6379
# No password: it listens on the compose network and on the host's loopback only.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--save", "60", "1"]
