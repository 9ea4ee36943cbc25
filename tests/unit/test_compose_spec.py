"""Reading compose files: the Compose specification's schema, then Switchyard's rules, each
refusal naming the key and the reason; interpolation from the app's environment."""
import pytest

from deployments.compose.file import load
from deployments.compose.project import ComposeError, Role
from deployments.engine import release_command

STORE_APP = """
services:
  web:
    build: .
    deploy: {replicas: 2}
    environment:
      - STORE=store:7000
      - GREETING=${GREETING:-hello}
    depends_on: {store: {condition: service_healthy}}
  store:
    build: {context: store}
    volumes: [counter:/data]
    healthcheck: {test: [CMD, nc, -z, localhost, "7000"], interval: 1s, timeout: 1s, retries: 30}
    stop_grace_period: 1m30s
  worker:
    build: {context: ., dockerfile: worker.Dockerfile}
    command: sh -c 'echo $$HOME'
    depends_on: [store]
volumes:
  counter: {}
"""


def problems(text: str, web: str = "web", environment: dict | None = None) -> list[str]:
    with pytest.raises(ComposeError) as refused:
        load(text, web, environment or {})
    return refused.value.problems


def test_services_get_roles_in_dependency_order():
    project = load(STORE_APP, "web", {"GREETING": "hi"})
    assert [(s.name, s.role) for s in project.services] == [
        ("store", Role.STATEFUL), ("web", Role.WEB), ("worker", Role.WORKER)]
    web, store, worker = project.web, project.service("store"), project.service("worker")
    assert web.replicas == 2 and dict(web.environment) == {"STORE": "store:7000", "GREETING": "hi"}
    assert web.depends_on == (("store", "service_healthy"),)
    assert store.stop_grace_period == 90 and store.healthcheck.interval == 1.0
    assert store.build_context == "store" and worker.dockerfile == "worker.Dockerfile"
    assert worker.command == "sh -c 'echo $HOME'"  # $$ is a literal $
    assert worker.depends_on == (("store", "service_started"),)


def test_a_definition_changes_with_what_the_service_is_and_only_then():
    first = load(STORE_APP, "web", {}).service("store").definition()
    assert load(STORE_APP, "web", {"GREETING": "other"}).service("store").definition() == first
    changed = STORE_APP.replace("stop_grace_period: 1m30s", "stop_grace_period: 5s")
    assert load(changed, "web", {}).service("store").definition() != first


def test_what_would_loosen_confinement_is_refused_by_name_with_the_reason():
    found = problems("""
services:
  web:
    build: .
    network_mode: host
    privileged: true
    volumes: [/etc:/etc]
    ports: ["80:8000"]
    cap_add: [NET_ADMIN]
    sysctls: {net.ipv4.ip_forward: 1}
    devices: [/dev/net/tun]
    pid: host
    ipc: host
    runtime: runsc
  db:
    image: postgres
    cpus: 2
""")
    assert "services.web.network_mode: host not supported: every service runs on the app's own network, " \
           "where services find each other by service name" in found
    assert any(p.startswith("services.web.privileged: True not supported: it would loosen") for p in found)
    assert any(p.startswith("services.web.volumes: '/etc': an absolute path: only files of the repository") for p in found)
    for key in ("cap_add: NET_ADMIN", "sysctls: net.ipv4.ip_forward", "devices: /dev/net/tun", "pid: host", "ipc: host", "runtime: runsc"):
        assert any(p.startswith(f"services.web.{key} not supported") for p in found), key
    assert not any(p.startswith("services.db: needs build") for p in found)  # an image service
    assert any(p.startswith("services.db.cpus: 2 not supported: each container's limits are the app's") for p in found)


def test_the_compose_schema_is_checked_first():
    assert problems("services: {web: {build: ., deploy: {replicas: [2]}}}") == [
        "services.web.deploy.replicas: [2] is not of type 'integer', 'string' (Compose specification)"]
    assert problems("services: {web: {build: ., colour: blue}}") == [
        "services.web.colour: additional property not allowed (Compose specification)"]


def test_a_schema_error_under_alternatives_names_the_offending_key():
    assert problems("services: {web: {build: {context: ., contxt: app}}}") == [
        "services.web.build.contxt: additional property not allowed (Compose specification)"]
    assert problems("services: {web: {build: ., ports: [{target: 80, protocl: tcp}]}}") == [
        "services.web.ports.0.protocl: additional property not allowed (Compose specification)"]


def test_newer_files_are_read_with_the_current_specification():
    project = load("name: shop\nservices: {web: {build: ., healthcheck: {test: [CMD, x], start_interval: 2s}}}",
                   "web", {})
    assert project.web.healthcheck.test == ("CMD", "x")
    assert problems("services: [web]") == ["services: ['web'] is not of type 'object' (Compose specification)"]
    assert problems("services: {web: {build: .}") [0].startswith("the compose file is not valid YAML")


@pytest.mark.parametrize("text, expected", [
    ("services: {api: {build: .}}", "services: there is no service 'web' to route the app's domains to"),
    ("services: {web: {build: ../elsewhere}}", "services.web.build.context: '../elsewhere' must be a directory"),
    ("services: {web: {build: ., volumes: [data:/data]}}", "services.web.volumes: volume 'data' is not declared"),
    ("services: {web: {build: ., depends_on: [db]}}", "services.web.depends_on: there is no service 'db'"),
    ("services: {web: {build: ., depends_on: {m: {condition: service_completed_successfully}}}, m: {build: ., "
     "depends_on: [w]}, w: {build: .}}", "services.m.depends_on.w: a job service can depend only on services that hold"),
    ("services: {web: {build: ., ports: ['53:53/udp']}}", "services.web.ports: 53:53/udp: UDP is not supported: "
     "HAProxy routes HTTP"),
    ("services: {web: {build: ., ports: [{target: 53, protocol: udp}]}}", "services.web.ports: 53: UDP is not"),
    ("services: {web: {build: ., ports: ['8000-8010:8000-8010']}}", "services.web.ports: 8000-8010:8000-8010: a range"),
    ("services: {web: {build: ., ports: ['http']}}", "services.web.ports: 'http': not a port"),
    ("services: {web: {build: ., command: '${TOKEN:?from the panel}'}}",
     "services.web.command: TOKEN must be set in the app's environment variables (from the panel)"),
    ("services: {web: {build: ., stop_grace_period: forever}}", "services.web.stop_grace_period: 'forever' is not"),
    ("networks: {back: {external: true}}\nservices: {web: {build: .}}", "networks.back.external: not supported"),
    ("services: {web: {build: ., init: false}}", "services.web.init: false not supported"),
    ("services: {web: {build: ., healthcheck: {test: []}}}", "services.web.healthcheck.test: a command"),
    ("services: {web: {build: ., healthcheck: {test: [CMD, x], interval: 10ms}}}",
     "services.web.healthcheck.interval: at least 1s"),
    ("services: {web: {build: ., volumes: [{type: volume, source: data}]}}\nvolumes: {data: {}}",
     "services.web.volumes: 'data': needs a target"),
    ("services: {web: {build: ., labels: [com.docker.compose.project=other]}}",
     "services.web.labels: com.docker.compose.project: labels under com.docker.compose. are Docker Compose's own"),
    ("services: {web: {build: ., uts: host}}", "services.web.uts: host not supported: it would loosen"),
    ("services: {web: {build: ., use_api_socket: true}}", "services.web.use_api_socket: True not supported: the Docker"),
    ("services: {web: {build: ., deploy: {replicas: many}}}", "services.web.deploy.replicas: between 1 and"),
    ("models: {m: {model: ai/x}}\nservices: {web: {build: .}}", "models: not supported"),
    ("services: {web: {build: ., pid: host}}", "services.web.pid: host not supported: it would loosen"),
    ("services: {web: {build: ., ipc: host}}", "services.web.ipc: host not supported: it would loosen"),
    ("services: {web: {build: ., userns_mode: host}}", "services.web.userns_mode: host not supported"),
    ("services: {web: {build: ., network_mode: 'service:db'}, db: {build: .}}",
     "services.web.network_mode: service:db not supported"),
    ("services: {web: {build: ., cap_add: [SYS_ADMIN]}}", "services.web.cap_add: SYS_ADMIN not supported"),
    ("services: {web: {build: ., devices: ['/dev/kmsg']}}", "services.web.devices: /dev/kmsg not supported"),
    ("services: {web: {build: ., security_opt: ['seccomp:unconfined']}}", "services.web.security_opt: seccomp"),
    ("services: {web: {build: ., volumes: [{type: bind, source: /, target: /host}]}}",
     "services.web.volumes: '/': an absolute path: only files of the repository are mounted"),
    ("services: {web: {build: .}, 123: {build: .}}", "services.123: keys must be text"),
    ("services: {web: {build: ., deploy: {replicas: 8}}, w: {build: ., deploy: {replicas: 8}}, "
     "x: {build: ., deploy: {replicas: 8}}, y: {build: ., deploy: {replicas: 8}}, z: {build: ., deploy: {replicas: 8}},"
     " v: {build: ., deploy: {replicas: 8}}}", "services: at most 40 containers"),
    ("services: {web: {build: ., labels: {switchyard.app: other}}}", "services.web.labels: switchyard.app: labels"),
    ("services: {web: {build: ., hostname: 'a b'}}", "services.web.hostname: 'a b': a host name"),
    ("services: {web: {build: ., container_name: 'a b'}}", "services.web.container_name: 'a b' does not match"),
    ("services: {web: {build: ., container_name: one, deploy: {replicas: 2}}}",
     "services.web.container_name: a name is for one container"),
    ("volumes: {data: {external: true}}\nservices: {web: {build: .}}", "volumes.data.external: not supported"),
    ("volumes: {data: {driver: nfs}}\nservices: {web: {build: .}}", "volumes.data.driver: not supported: Switchyard "
     "creates each app's volumes itself"),
    ("volumes: {data: {driver_opts: {device: /}}}\nservices: {web: {build: .}}", "volumes.data.driver_opts: not"),
    ("services: {web: {build: ., privileged: true}}", "services.web.privileged: True not supported: it would loosen"),
    ("services: {web: {build: ., volumes: ['/var/run/docker.sock:/var/run/docker.sock']}}",
     "services.web.volumes: '/var/run/docker.sock': the Docker socket would give the app control of every container"),
])
def test_each_refusal_says_where_and_what_to_do(text, expected):
    assert any(problem.startswith(expected) for problem in problems(text)), problems(text)


def test_yaml_aliases_that_expand_too_far_are_refused_before_they_expand():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)) + "services: {web: {build: .}}\n"
    assert problems(bomb) == ["line 8: with its aliases written out, the file holds more than 100,000 values "
                              "(nested aliases multiply); write shared settings once per service"]


def test_a_recursive_alias_is_refused():
    assert problems("a: &a [x, *a]\nservices: {web: {build: .}}") == [
        "line 1: an anchor is used inside itself (a recursive alias)"]


def test_anchors_aliases_and_merge_keys_are_read_as_compose_reads_them():
    text = """
x-common: &common
  build: .
  environment: {MODE: fast}
  stop_grace_period: 5s
services:
  web:
    <<: *common
    environment: {MODE: slow}
  worker:
    <<: *common
    command: [run, worker]
"""
    project = load(text, "web", {})
    assert dict(project.web.environment) == {"MODE": "slow"} and project.web.stop_grace_period == 5
    assert dict(project.service("worker").environment) == {"MODE": "fast"}
    assert project.service("worker").command == ("run", "worker")


def test_a_variable_without_a_value_passes_the_apps_own_through():
    text = "services: {web: {build: ., environment: [TOKEN, UNSET, MODE=fast]}}"
    assert dict(load(text, "web", {"TOKEN": "t-1"}).web.environment) == {"TOKEN": "t-1", "MODE": "fast"}


def test_a_cycle_is_refused():
    text = """
services:
  web: {build: .}
  a: {build: ., depends_on: [b]}
  b: {build: ., depends_on: [a]}
"""
    assert problems(text) == ["services: depends_on forms a cycle"]


def test_the_web_service_that_cannot_run_twice_says_why():
    web = load("""
services:
  web:
    build: .
    container_name: shop
    volumes: [uploads:/uploads, static:/static:ro]
volumes: {uploads: {}, static: {}}
""", "web", {}).web
    assert web.recreate_reasons() == [
        "container_name 'shop': one container at a time can have a name",
        "volume 'uploads': the old and the new release would write it at once"]


def test_another_service_can_be_the_web_one():
    project = load("services: {frontend: {build: .}, web: {build: ./old}}", "frontend", {})
    assert project.web.name == "frontend" and project.service("web").role == Role.WORKER


RELEASE_APP = """
services:
  web:
    build: .
    depends_on: [db]
  db:
    build: db
    volumes: [data:/data]
    x-switchyard-release-command: [/bin/init-db, --if-empty]
  worker:
    build: .
    x-switchyard-release-command: "sh -c 'echo warm the cache'"
volumes:
  data: {}
"""


def test_release_commands_per_service_in_dependency_order_the_web_falling_back_to_the_apps():
    project = load(RELEASE_APP, "web", {})

    assert release_command.commands(project, "manage.py migrate") == [
        (project.service("db"), ("/bin/init-db", "--if-empty")),
        (project.web, ("manage.py", "migrate")),
        (project.service("worker"), ("sh", "-c", "echo warm the cache"))]
    assert [spec.name for spec, _ in release_command.commands(project, "")] == ["db", "worker"]


def test_a_release_command_does_not_change_a_services_definition():
    without = load(RELEASE_APP.replace("    x-switchyard-release-command: [/bin/init-db, --if-empty]\n", ""), "web", {})
    assert without.service("db").definition() == load(RELEASE_APP, "web", {}).service("db").definition()


@pytest.mark.parametrize("value, reason", [("3", "a command, as a string or a list of strings"),
                                           ("\"sh -c 'unclosed\"", "No closing quotation"),
                                           ("[]", "a command, as a string or a list of strings")])
def test_a_release_command_that_is_not_a_command_is_refused(value, reason):
    text = f"services:\n  web:\n    build: .\n    x-switchyard-release-command: {value}\n"
    [problem] = problems(text)
    assert problem.startswith("services.web.x-switchyard-release-command: ") and reason in problem, problem

