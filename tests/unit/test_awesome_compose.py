"""The 39 compose files of docker/awesome-compose (CC0; vendored in tests/data/awesome-compose
with the repository files they reference) read as a user would paste them: each is accepted,
with the service a user would route as the web one and the container port its ports: name, or
refused ONLY for what a shared host cannot allow, each refusal naming the service and the key."""
import hashlib
from pathlib import Path

import pytest
from django.conf import settings

from deployments.compose.file import load
from deployments.compose.project import ComposeError

CORPUS = Path(__file__).parent.parent / "data" / "awesome-compose"
# Values a user sets in the app's environment for an example that interpolates them.
ENVIRONMENT = {"plex": {"PLEX_MEDIA_PATH": "/srv/media"}}

# example: (the service a user routes the app's domains to, the container port HAProxy routes to;
# None: the web service lists no ports, and the app's port setting is used)
WEB = {
    "angular": ("web", 4200), "apache-php": ("web", 80), "aspnet-mssql": ("web", 80), "django": ("web", 8000),
    "elasticsearch-logstash-kibana": ("kibana", 5601), "fastapi": ("api", 8000), "flask": ("web", 8000),
    "flask-redis": ("web", 8000), "gitea-postgres": ("gitea", 3000), "minecraft": ("minecraft", 25565),
    "nextcloud-postgres": ("nc", 80), "nextcloud-redis-mariadb": ("nc", 80), "nginx-aspnet-mysql": ("proxy", 80),
    "nginx-flask-mongo": ("web", 80),  # web is the nginx front here; backend is flask
    "nginx-flask-mysql": ("proxy", 80), "nginx-golang": ("proxy", 80), "nginx-golang-mysql": ("proxy", 80),
    "nginx-golang-postgres": ("proxy", 80), "nginx-nodejs-redis": ("nginx", 80),
    "nginx-wsgi-flask": ("nginx-proxy", 80), "pihole-cloudflared-DoH": ("pihole", 80), "plex": ("plex", None),
    "portainer": ("portainer", 9000), "postgresql-pgadmin": ("pgadmin", 80), "prometheus-grafana": ("grafana", 3000),
    "react-express-mongodb": ("frontend", 3000), "react-express-mysql": ("frontend", 3000),
    "react-java-mysql": ("frontend", 3000), "react-nginx": ("frontend", 80), "react-rust-postgres": ("frontend", 3000),
    "sparkjava": ("sparkjava", 8080), "sparkjava-mysql": ("backend", 8080), "spring-postgres": ("backend", 8080),
    "traefik-golang": ("frontend", 80),
    "vuejs": ("web", 8080),
    "wasmedge-kafka-mysql": ("etl", None),  # the app is the WebAssembly ETL service; nothing there serves HTTP
    "wasmedge-mysql-nginx": ("frontend", 80), "wireguard": ("wireguard", None), "wordpress-mysql": ("wordpress", 80),
}

# What a shared host refuses, per example: every problem's place (service and key), and a word of
# its reason. Every other example is accepted.
REFUSED = {
    "plex": {"services.plex.network_mode": "network", "services.plex.volumes": "host"},
    "portainer": {"services.portainer.volumes": "socket"},
    "traefik-golang": {"services.frontend.volumes": "socket"},
    "wireguard": {"services.wireguard.cap_add": "capabilit", "services.wireguard.sysctls": "confinement",
                  "services.wireguard.ports": "UDP", "services.wireguard.volumes": "host"},
    "pihole-cloudflared-DoH": {"services.pihole.cap_add": "capabilit", "services.pihole.ports": "UDP",
                               "services.pihole.volumes": "host"},
    "minecraft": {"services.minecraft.volumes": "host", "services.minecraft.deploy.resources": "limits"},
}

def _read_file_in(directory: Path):
    """A repository's files as load() reads them."""
    def read_file(path: str) -> bytes:
        found = (directory / path).resolve()
        if not found.is_relative_to(directory.resolve()) or not found.exists():
            raise FileNotFoundError(path)
        if found.is_dir():  # identified by its content, as git identifies a tree
            listing = sorted(str(item.relative_to(found)) for item in found.rglob("*"))
            raise IsADirectoryError(hashlib.sha1("\n".join(listing).encode()).hexdigest())
        return found.read_bytes()
    return read_file


def _load(name: str):
    directory = CORPUS / name
    return load((directory / "compose.yaml").read_text(), WEB[name][0], ENVIRONMENT.get(name, {}), app_port=8000,
                allowed_runtimes=settings.SWITCHYARD["ALLOWED_RUNTIMES"], read_file=_read_file_in(directory))


def test_the_corpus_is_the_39_examples():
    assert sorted(path.name for path in CORPUS.iterdir() if path.is_dir()) == sorted(WEB)
    assert len(WEB) == 39 and len(REFUSED) == 6 and set(REFUSED) <= set(WEB)


@pytest.mark.parametrize("name", [name for name in sorted(WEB) if name not in REFUSED])
def test_an_example_is_accepted_with_the_service_a_user_routes(name):
    try:
        project = _load(name)
    except ComposeError as error:
        pytest.fail("\n".join(error.problems))
    assert (project.web.name, project.web.routed_port) == WEB[name]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_example_is_refused_only_for_what_a_shared_host_cannot_allow(name):
    with pytest.raises(ComposeError) as refused:
        _load(name)
    places = {problem.split(":")[0] for problem in refused.value.problems}
    assert places == set(REFUSED[name]), refused.value.problems
    for problem in refused.value.problems:
        assert REFUSED[name][problem.split(":")[0]].lower() in problem.lower(), problem
