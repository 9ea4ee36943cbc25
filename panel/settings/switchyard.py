"""Switchyard's own settings (SWITCHYARD, and the webhook endpoint's budgets), each from an
environment variable; defaults that contradict each other stop start-up."""
import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from panel.env import (
    env_acme_directory,
    env_bind,
    env_bool,
    env_docker_url,
    env_email,
    env_file,
    env_float,
    env_hostname,
    env_int,
    env_ipv4_network,
    env_networks,
    env_registries,
    env_runtimes,
    env_socket_path,
    env_str,
    env_url,
    optional_env_bind,
)
from panel.settings.paths import DATA_DIR

# What Switchyard itself runs and where.
_PANEL_BIND = env_bind("SWITCHYARD_PANEL_BIND", "127.0.0.1:8000")
_PANEL_DOMAIN = env_hostname("SWITCHYARD_PANEL_DOMAIN")

# A running deployment writes its heartbeat this often; reconcile fails one whose heartbeat is
# older than HEARTBEAT_TIMEOUT, which must leave room for at least two missed beats.
_HEARTBEAT_INTERVAL = env_int("SWITCHYARD_HEARTBEAT_INTERVAL", 5, minimum=1, maximum=60)

# The WebAssembly shims: they run a module in a sandbox stricter than runc's, they loosen nothing.
DEFAULT_ALLOWED_RUNTIMES = "io.containerd.wasmedge.v1,io.containerd.wasmtime.v1,io.containerd.spin.v2"
DEFAULT_PULL_REGISTRIES = "docker.io,ghcr.io,quay.io,public.ecr.aws,mcr.microsoft.com,registry.k8s.io,gcr.io"

SWITCHYARD = {
    # Label on every container, image and network this installation creates; a test run
    # uses its own, so it never touches the containers of a running panel.
    "INSTANCE": env_str("SWITCHYARD_INSTANCE", "main"),
    # Each app gets its own bridge network, named <DOCKER_NETWORK>-<app>, with a /26 of
    # APP_SUBNETS: 61 addresses, room for blue and green at MAX_REPLICAS; 1,024 apps in a /16.
    # The default range sits just below Docker's own default pools (172.17-31.x, 192.168.x),
    # in the same private block, so it does not collide with the networks Docker makes itself.
    "DOCKER_NETWORK": env_str("SWITCHYARD_DOCKER_NETWORK", "switchyard"),
    "APP_SUBNETS": env_ipv4_network("SWITCHYARD_APP_SUBNETS", "172.16.0.0/16", longest_prefix=26),
    "APP_SUBNET_PREFIX": 26,
    # Egress (engine/egress.py): app containers and build steps reach neither the host itself nor
    # private, link-local (cloud metadata) or other special ranges, except these CIDRs.
    # EGRESS_RULES off: Switchyard installs no iptables rules (the administrator's firewall must).
    "EGRESS_ALLOW": env_networks("SWITCHYARD_EGRESS_ALLOW"),
    "EGRESS_RULES": env_bool("SWITCHYARD_EGRESS_RULES", True),
    # The resolv.conf dockerd reads: containers' DNS to its nameservers passes the rules (port 53 only).
    "EGRESS_RESOLV_CONF": env_str("SWITCHYARD_EGRESS_RESOLV_CONF", "/etc/resolv.conf"),
    "HTTP_BIND": env_bind("SWITCHYARD_HTTP_BIND", "127.0.0.1:8080"),
    # HTTPS (docs/https.md): where HAProxy serves TLS, and the ACME server certificates come from.
    "HTTPS_BIND": env_bind("SWITCHYARD_HTTPS_BIND", "127.0.0.1:8443"),
    "ACME_DIRECTORY": env_acme_directory("SWITCHYARD_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory"),
    "ACME_EMAIL": env_email("SWITCHYARD_ACME_EMAIL"),
    "ACME_CA_BUNDLE": env_file("SWITCHYARD_ACME_CA_BUNDLE"),  # "" trusts the system's CAs
    # How often the worker looks for certificates to issue, renew or retry (seconds).
    # Domains one app may have: every one is an SNI filter on the app's crt-list line, which HAProxy
    # reads whole (at most 2047 words and 64 KiB at a start, 16 KiB through the runtime API).
    "MAX_APP_DOMAINS": env_int("SWITCHYARD_MAX_APP_DOMAINS", 100, minimum=1, maximum=250),
    # Seconds between two certificate uploads of one app (each may reload HAProxy).
    "CERTIFICATE_UPLOAD_INTERVAL": env_int("SWITCHYARD_CERTIFICATE_UPLOAD_INTERVAL", 10, minimum=0, maximum=3600),
    "CERTIFICATE_INTERVAL": env_int("SWITCHYARD_CERTIFICATE_INTERVAL", 60, minimum=1, maximum=86400),
    "PANEL_BIND": _PANEL_BIND,
    # The panel's own domain, served by the apps' HAProxy (to PANEL_BIND) with a certificate of
    # its own: docs/production.md, "Put it on a server". "" serves it on PANEL_BIND only.
    "PANEL_DOMAIN": _PANEL_DOMAIN,
    "HAPROXY_DIR": DATA_DIR / "haproxy",
    # True: only `manage.py haproxy` starts HAProxy, the workers never do (the compose stack: a
    # HAProxy started in a worker's container would die with it). False: whoever finds it down.
    "HAPROXY_SUPERVISED": env_bool("SWITCHYARD_HAPROXY_SUPERVISED", False),
    # HAProxy's read-only stats page (HTTP on a unix socket): all the panel reads from HAProxy.
    # Compose shares its directory with the web service; the rest of HAPROXY_DIR it does not.
    "HAPROXY_STATS_SOCKET": env_socket_path("SWITCHYARD_HAPROXY_STATS_SOCKET", DATA_DIR / "haproxy" / "stats.sock"),
    # The panel follows live containers' output through this Docker API (only GET .../logs is
    # needed; compose/docker-logs-proxy.cfg allows nothing else). Empty: the local daemon.
    "DOCKER_LOGS_URL": env_docker_url("SWITCHYARD_DOCKER_LOGS_URL"),
    "REPO_CACHE_DIR": DATA_DIR / "repos",
    # Networks a repository URL set by a tenant may point at besides public addresses
    # (docs/security-model.md, "Repositories"), e.g. a git server on the LAN: 10.0.0.0/8.
    # The CLI and superusers may use any.
    "REPOSITORY_ALLOWED_NETWORKS": env_networks("SWITCHYARD_REPOSITORY_ALLOWED_NETWORKS"),
    "GIT_TIMEOUT": env_int("SWITCHYARD_GIT_TIMEOUT", 120, minimum=1),
    # The panel itself reads a repository (its branches; a Compose app's file) while the person who
    # creates the app (or changes its source) waits: each read at most this long, and this much written.
    "REMOTE_CHECK_TIMEOUT": env_int("SWITCHYARD_REMOTE_CHECK_TIMEOUT", 20, minimum=1, maximum=300),
    "REMOTE_CHECK_MAX_MB": env_int("SWITCHYARD_REMOTE_CHECK_MAX_MB", 32, minimum=1, maximum=4096),
    "BUILD_TIMEOUT": env_int("SWITCHYARD_BUILD_TIMEOUT", 1800, minimum=1),
    # Builds hold this file's lock shared, removals of their layers exclusively (dockerd/build_lock.py):
    # every installation on one Docker daemon must name the same file (the compose stack: /data's).
    "BUILD_LOCK_FILE": Path(env_str("SWITCHYARD_BUILD_LOCK_FILE", str(DATA_DIR / "build.lock"))),
    # A base image the build check pulls: its layers' sizes as the registry declares them, at most
    # this much in all (the pull also ends with the build's timeout and the deployment's cancel).
    "MAX_PULL_MB": env_int("SWITCHYARD_MAX_PULL_MB", 4096, minimum=1, maximum=2**20),
    # The registries base images may be pulled from. dockerd pulls on the host's network and
    # follows a registry's redirects wherever they point: a registry a tenant runs could send it
    # to the metadata address or the LAN. Only registries named here are asked at all.
    "PULL_REGISTRIES": env_registries("SWITCHYARD_PULL_REGISTRIES", DEFAULT_PULL_REGISTRIES),
    # The container runtimes a compose file's `runtime:` may name (each must be one dockerd has).
    "ALLOWED_RUNTIMES": env_runtimes("SWITCHYARD_ALLOWED_RUNTIMES", DEFAULT_ALLOWED_RUNTIMES),
    # Registries at a loopback or private address the administrator runs and trusts (a company
    # registry on the LAN): images may come from these too. Any other private address is refused.
    "PRIVATE_REGISTRIES": env_registries("SWITCHYARD_PRIVATE_REGISTRIES", ""),
    "DRAIN_TIMEOUT": env_int("SWITCHYARD_DRAIN_TIMEOUT", 30, minimum=0),
    "KEEP_IMAGES": env_int("SWITCHYARD_KEEP_IMAGES", 5, minimum=1),
    "HEARTBEAT_INTERVAL": _HEARTBEAT_INTERVAL,
    "HEARTBEAT_TIMEOUT": env_int("SWITCHYARD_HEARTBEAT_TIMEOUT", 90, minimum=2 * _HEARTBEAT_INTERVAL),
    # How often HAProxy checks each server (a server is UP after 1 good check, DOWN after 2 bad
    # ones). The test suite shortens it: every deploy waits for a check, every rollback for two.
    "HAPROXY_CHECK_INTERVAL_MS": env_int("SWITCHYARD_HAPROXY_CHECK_INTERVAL_MS", 1000, minimum=100, maximum=60000),
    # Deployments one user's apps may run at once (0: no limit); the rest wait queued, so one
    # user cannot take every slot of the deploy worker (Procfile: --concurrency 4).
    "MAX_CONCURRENT_DEPLOYS_PER_USER": env_int("SWITCHYARD_MAX_CONCURRENT_DEPLOYS_PER_USER", 2, minimum=0,
                                               maximum=1000),
    # For fault-injection tests only: seconds each phase waits once it has started, so a test
    # can kill the worker in a phase that otherwise takes milliseconds (the switch).
    "FAULT_PAUSE": env_float("SWITCHYARD_FAULT_PAUSE", 0.0, minimum=0, maximum=60),
    # Watch window a new app gets (seconds after the switch; each app can change it).
    "DEFAULT_WATCH_WINDOW": env_int("SWITCHYARD_DEFAULT_WATCH_WINDOW", 30, maximum=3600),
    "DEFAULT_CANARY_STEP_SECONDS": env_int("SWITCHYARD_DEFAULT_CANARY_STEP_SECONDS", 60, minimum=1, maximum=3600),
    # A release command (migrations) that runs longer is stopped and fails the deployment.
    "RELEASE_COMMAND_TIMEOUT": env_int("SWITCHYARD_RELEASE_COMMAND_TIMEOUT", 900, minimum=1, maximum=86400),
    # Addresses that may read /metrics without a token (Prometheus on this host, say).
    "METRICS_ALLOWED_IPS": env_networks("SWITCHYARD_METRICS_ALLOWED_IPS"),
    # Where HAProxy's own Prometheus exporter listens (HOST:PORT); empty: only on the stats socket.
    "HAPROXY_METRICS_BIND": optional_env_bind("SWITCHYARD_HAPROXY_METRICS_BIND"),
    # Deploy events (docs/deploy-events.md): links in them point at the panel here.
    "PUBLIC_URL": env_url("SWITCHYARD_PUBLIC_URL", f"https://{_PANEL_DOMAIN}" if _PANEL_DOMAIN
                          else "http://{}:{}".format(*_PANEL_BIND)),
    "EVENT_RETRY_SECONDS": env_int("SWITCHYARD_EVENT_RETRY_SECONDS", 10, minimum=1, maximum=3600),
    "EVENT_MAX_ATTEMPTS": env_int("SWITCHYARD_EVENT_MAX_ATTEMPTS", 6, minimum=1, maximum=20),
    "EVENT_TIMEOUT": env_int("SWITCHYARD_EVENT_TIMEOUT", 10, minimum=1, maximum=120),
    "EVENT_INTERVAL": env_int("SWITCHYARD_EVENT_INTERVAL", 5, minimum=1, maximum=3600),
    # True: webhook targets may be private addresses (tests; a panel on a private network).
    "EVENTS_ALLOW_PRIVATE": env_bool("SWITCHYARD_EVENTS_ALLOW_PRIVATE", False),
    # Commit statuses go to these APIs (the repository's name comes from the verified webhook).
    "GITHUB_API_URL": env_url("SWITCHYARD_GITHUB_API_URL", "https://api.github.com"),
    "GITLAB_URL": env_url("SWITCHYARD_GITLAB_URL", "https://gitlab.com"),
    "GITEA_URL": env_url("SWITCHYARD_GITEA_URL", ""),
    # p95 differences below this never fail a canary: noise at sub-millisecond latencies.
    "CANARY_LATENCY_FLOOR_MS": env_int("SWITCHYARD_CANARY_LATENCY_FLOOR_MS", 20, minimum=0, maximum=60000),
    # Confinement a new app gets (each app can change its own; see docs/security-model.md, "Confined apps").
    "DEFAULT_MEMORY_MB": env_int("SWITCHYARD_DEFAULT_MEMORY_MB", 512, minimum=16, maximum=65536),
    "DEFAULT_CPUS": env_float("SWITCHYARD_DEFAULT_CPUS", 1.0, minimum=0.05, maximum=64),
    "DEFAULT_PIDS": env_int("SWITCHYARD_DEFAULT_PIDS", 256, minimum=16, maximum=32768),
    # Ceilings an app's own limits may not pass (a superuser grants more per user: Django admin,
    # Quotas). Each container of an app gets the app's limits, so these bound one container.
    "MAX_APP_MEMORY_MB": env_int("SWITCHYARD_MAX_APP_MEMORY_MB", 2048, minimum=16, maximum=65536),
    "MAX_APP_CPUS": env_float("SWITCHYARD_MAX_APP_CPUS", 2.0, minimum=0.05, maximum=64),
    "MAX_APP_PIDS": env_int("SWITCHYARD_MAX_APP_PIDS", 1024, minimum=16, maximum=32768),
    "MAX_APP_CONTAINERS": env_int("SWITCHYARD_MAX_APP_CONTAINERS", 16, minimum=1, maximum=1000),
    # How long one deployment of an app may watch (its watch window) and run its canary (steps below
    # 100 % × seconds each), seconds: all that time it holds a watch slot and keeps its old release running.
    "MAX_APP_WATCH_SECONDS": env_int("SWITCHYARD_MAX_APP_WATCH_SECONDS", 3600, minimum=0, maximum=86400),
    "MAX_APP_CANARY_SECONDS": env_int("SWITCHYARD_MAX_APP_CANARY_SECONDS", 3600, minimum=0, maximum=86400),
    # Per user (the owner of the apps): how many apps, and memory and containers of them all.
    "USER_MAX_APPS": env_int("SWITCHYARD_USER_MAX_APPS", 10, minimum=0, maximum=100000),
    "USER_MAX_MEMORY_MB": env_int("SWITCHYARD_USER_MAX_MEMORY_MB", 8192, minimum=16, maximum=2**24),
    "USER_MAX_CONTAINERS": env_int("SWITCHYARD_USER_MAX_CONTAINERS", 32, minimum=1, maximum=100000),
    # Limits of a build's RUN steps (all apps).
    "BUILD_MEMORY_MB": env_int("SWITCHYARD_BUILD_MEMORY_MB", 2048, minimum=64, maximum=65536),
    "BUILD_CPUS": env_float("SWITCHYARD_BUILD_CPUS", 1.0, minimum=0.05, maximum=64),
    "BUILD_PIDS": env_int("SWITCHYARD_BUILD_PIDS", 1024, minimum=16, maximum=32768),
    # A commit's source (the build context, as a tar) larger than this is refused.
    "MAX_SOURCE_MB": env_int("SWITCHYARD_MAX_SOURCE_MB", 1024, minimum=1, maximum=65536),
    # Lines and bytes stored per deployment log; the rest is cut with a line saying so.
    "MAX_LOG_LINES": env_int("SWITCHYARD_MAX_LOG_LINES", 50000, minimum=100),
    "MAX_LOG_BYTES": env_int("SWITCHYARD_MAX_LOG_BYTES", 10 * 1024 * 1024, minimum=64 * 1024, maximum=2**31),
    # Logs of deployments that ended longer ago than this are deleted (the deployments stay); 0: kept.
    "LOG_RETENTION_DAYS": env_int("SWITCHYARD_LOG_RETENTION_DAYS", 90, minimum=0, maximum=36500),
}


def _refuse_defaults_above_ceilings(config: dict) -> None:
    for default, ceiling in (("MEMORY_MB", "MEMORY_MB"), ("CPUS", "CPUS"), ("PIDS", "PIDS"),
                             ("WATCH_WINDOW", "WATCH_SECONDS")):
        if config[f"DEFAULT_{default}"] > config[f"MAX_APP_{ceiling}"]:
            raise ImproperlyConfigured(
                f"SWITCHYARD_DEFAULT_{default}={config[f'DEFAULT_{default}']} is above SWITCHYARD_MAX_APP_{ceiling}="
                f"{config[f'MAX_APP_{ceiling}']}: a new app would start over its ceiling; lower the one or raise the other")


_refuse_defaults_above_ceilings(SWITCHYARD)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


# Every app answers on NAME.localhost: handy on a machine of one's own, but on a public address
# it lets anyone list the apps by guessing names. Default: on only where HAProxy binds loopback.
SWITCHYARD["LOCALHOST_NAMES"] = env_bool("SWITCHYARD_LOCALHOST_NAMES", is_loopback(SWITCHYARD["HTTP_BIND"][0]))

# Rejected webhook deliveries (bad signature, malformed) one address may send per minute before 429.
WEBHOOK_REJECTIONS_PER_MINUTE = env_int("SWITCHYARD_WEBHOOK_REJECTIONS_PER_MINUTE", 20, minimum=1, maximum=100000)
# Rejected deliveries kept per app (newest first); valid ones are never pruned.
WEBHOOK_REJECTIONS_KEPT = env_int("SWITCHYARD_WEBHOOK_REJECTIONS_KEPT", 100, minimum=1, maximum=100000)
