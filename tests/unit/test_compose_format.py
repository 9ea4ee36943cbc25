"""Compose files as people write them: ports, runtimes, volume names, start_interval, service
names with capitals or dots, profiles; and a service's definition kept across the new fields."""
import hashlib
import json
import re
from dataclasses import asdict

import pytest

from deployments.compose.file import load
from deployments.compose.project import ComposeError
from tests.unit.test_compose_spec import STORE_APP, problems


@pytest.mark.parametrize("ports, routed", [
    ("['80:80']", 80), ("['80']", 80), ("[80]", 80), ("['8080:80']", 80), ("['127.0.0.1:8080:80']", 80),
    ("['[::1]:8080:80/tcp']", 80), ("[{target: 80, published: 8080, protocol: tcp}]", 80),
    ("[{target: '3000'}]", 3000), ("['80:80', '443:443']", 80), ("['80:80', '8000:8000']", 8000),
])
def test_the_web_services_ports_say_which_container_port_to_route(ports, routed):
    project = load(f"services: {{web: {{build: ., ports: {ports}}}}}", "web", {}, app_port=8000)
    assert project.web.routed_port == routed


def test_ports_are_never_published_and_what_is_ignored_is_said():
    project = load("services: {web: {build: ., ports: ['80:80', '443:443']}, db: {build: ., ports: ['5432:5432', "
                   "'53:53/udp']}}",
                   "web", {}, app_port=8000)
    assert project.notices == (
        "services.web.ports: several ports (80, 443); HAProxy routes to container port 80 (the first; set the app's "
        "port to choose another)",
        "services.web.ports: nothing is published on the host; the app's domains reach container port 80 through "
        "HAProxy",
        "services.db.ports: 5432:5432, 53:53/udp ignored: nothing is published on the host; the other services reach this one "
        "by its name")
    assert project.service("db").routed_port is None
    assert load("services: {web: {build: .}}", "web", {}).web.routed_port is None


WASM = ("io.containerd.wasmedge.v1", "io.containerd.wasmtime.v1")


def test_a_runtime_runs_only_when_the_administrator_allows_it():
    text = "services: {web: {build: ., runtime: io.containerd.wasmedge.v1}}"
    assert load(text, "web", {}, allowed_runtimes=WASM).web.runtime == "io.containerd.wasmedge.v1"
    [problem] = problems(text)
    assert problem == ("services.web.runtime: io.containerd.wasmedge.v1 not supported: a runtime decides how far a "
                       "container is confined, and only those the administrator allows run here "
                       "(SWITCHYARD_ALLOWED_RUNTIMES: none)")
    with pytest.raises(ComposeError, match=r"runtime: runc-unconfined not supported.*\(SWITCHYARD_ALLOWED_RUNTIMES: "
                                           r"io.containerd.wasmedge.v1, io.containerd.wasmtime.v1\)"):
        load("services: {web: {build: ., runtime: runc-unconfined}}", "web", {}, allowed_runtimes=WASM)


def test_the_runtime_reaches_the_containers_host_config():
    from deployments.dockerd.containers import RunOptions
    assert RunOptions(runtime="io.containerd.wasmedge.v1").create_arguments("net")["runtime"] == \
        "io.containerd.wasmedge.v1"
    assert "runtime" not in RunOptions().create_arguments("net")


def test_a_volumes_name_stays_inside_the_apps_namespace_and_only_distinguishes():
    project = load("""
services:
  web: {build: ., volumes: [data:/data, same:/same]}
volumes:
  data: {name: shop-data}
  same: {name: shop-data}
""", "web", {})
    assert [mount.volume for mount in project.web.volumes] == ["shop-data", "shop-data"]
    assert project.volumes == ("shop-data",)
    assert problems("services: {web: {build: ., volumes: [d:/d]}}\nvolumes: {d: {name: ../../etc}}") == [
        "volumes.d.name: a volume name is letters, digits, '_', '.' and '-'"]


def test_a_healthchecks_start_interval_is_accepted_and_said_not_applied():
    project = load("services: {web: {build: ., healthcheck: {test: [CMD, x], start_interval: 2s}}}", "web", {})
    assert project.notices == ("services.web.healthcheck.start_interval: not applied (this Docker API has none): "
                               "checks run every interval from the start; start_period still applies",)


def test_service_names_with_capitals_or_dots_are_accepted_and_safe_where_they_reach_docker():
    project = load("services: {Frontend: {build: .}, api.v1: {build: .}, web: {build: .}, Web: {build: .}}",
                   "Frontend", {})
    names = {spec.name: spec.docker_name for spec in project.services}
    assert names["web"] == "web" and names["Frontend"].startswith("frontend-")
    assert names["api.v1"].startswith("api-v1-") and names["Web"].startswith("web-")
    assert len(set(names.values())) == 4  # collision-free
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) for name in names.values())  # image repositories
    assert project.web.name == "Frontend"  # other services find it by the name as written (its alias)


@pytest.mark.parametrize("name, problem", [
    ("-web", "a service name is letters, digits, '.', '_' and '-' (at most 31), starting with a letter or digit"),
    ("w" * 32, "a service name is letters, digits, '.', '_' and '-' (at most 31), starting with a letter or digit"),
    ("web service", "not a name the specification allows here (^[a-zA-Z0-9._-]+$) (Compose specification)"),
    ("wéb", "not a name the specification allows here (^[a-zA-Z0-9._-]+$) (Compose specification)"),
])
def test_a_service_name_outside_composes_grammar_is_refused(name, problem):
    assert f"services.{name}: {problem}" in problems(f"services: {{web: {{build: .}}, '{name}': {{build: .}}}}")


PROFILES_APP = """
services:
  web: {build: .}
  debug: {build: ., profiles: [debug]}
  mail: {build: ., profiles: [mail, all]}
"""


def test_services_whose_profiles_are_not_active_are_left_out_and_said():
    project = load(PROFILES_APP, "web", {})
    assert [spec.name for spec in project.services] == ["web"]
    assert project.notices == ("services: left out by profiles (active: none): debug (debug), mail (mail, all)",)
    assert [spec.name for spec in load(PROFILES_APP, "web", {}, profiles=("all",)).services] == ["web", "mail"]
    assert [spec.name for spec in load(PROFILES_APP, "web", {}, profiles=("debug", "mail")).services] == [
        "web", "debug", "mail"]


def test_a_web_service_in_an_inactive_profile_is_refused_naming_it():
    assert problems("services: {web: {build: ., profiles: [prod]}}") == [
        "services.web.profiles: the web service is only in the profiles prod, and the app's active profiles are "
        "none: add one of them to the app's Compose profiles setting, or take the web service out of profiles"]
    assert load("services: {web: {build: ., profiles: [prod]}}", "web", {}, profiles=("prod",)).web.name == "web"


@pytest.mark.parametrize("setting, names, problem", [
    ("", (), ""), ("debug mail", ("debug", "mail"), ""), (" debug,mail , debug ", ("debug", "mail"), ""),
    ("de$bug", ("de$bug",), "'de$bug' is not a profile name"), (" ".join(f"p{i}" for i in range(11)), None,
                                                                 "at most 10 profiles"),
])
def test_the_apps_profiles_setting_is_names_separated_by_spaces_or_commas(setting, names, problem):
    from deployments.compose.profiles import profile_names, profiles_problem
    if problem:
        assert profiles_problem(setting).startswith(problem)
    else:
        assert profiles_problem(setting) == "" and profile_names(setting) == names


def test_a_definition_recorded_before_the_new_fields_is_unchanged():
    """The hash of STORE_APP's store as releases recorded it before the fields issue 24 added."""
    store = load(STORE_APP, "web", {}).service("store")
    before = {key: value for key, value in asdict(store).items()
              if key not in ("release_command", "runtime", "routed_port", "files", "anonymous_volumes")}
    assert store.definition() == hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
    assert load(STORE_APP.replace("    stop_grace_period: 1m30s", "    stop_grace_period: 1m30s\n"
                                  "    runtime: io.containerd.wasmedge.v1"), "web", {},
                allowed_runtimes=WASM).service("store").definition() != store.definition()
