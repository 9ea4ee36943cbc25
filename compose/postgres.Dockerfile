# PostgreSQL 15 from Debian's package, on the locally built base (scripts/base-image.sh).
# The entrypoint creates the cluster, user and database on the first start (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB), as the registry's postgres image does.
ARG BASE_IMAGE=switchyard-base:bookworm
FROM ${BASE_IMAGE}
# Apps' builds may not start from the panel's images, whatever they are tagged (dockerfile/base_images.py).
LABEL switchyard.panel=postgres
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && pg_dropcluster 15 main
COPY compose/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
CMD ["postgres-entrypoint"]
