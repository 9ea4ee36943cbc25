"""How a release's services run together, as the file says: one-shot services (depends_on with
service_completed_successfully), depends_on's long syntax, restart policies, networks and their
aliases, hostname, stdin_open and lifecycle hooks (and what a deployment records of pre_stop). Read with rules.read_services directly: the
bundled schema may predate the newest keys (post_start, depends_on.required)."""

import pytest

from deployments.compose.hooks import Hook
from deployments.compose.project import ComposeError, Role
from deployments.compose.rules import read_services
from deployments.dockerd.containers import docker_policy
from deployments.engine import hooks
from deployments.models import Deployment


def read(services: dict, **top):
    return read_services({"services": services, **top}, web_service="web", default_replicas=1, environment={})


def problems(services: dict, **top) -> list[str]:
    with pytest.raises(ComposeError) as refused:
        read(services, **top)
    return refused.value.problems


MIGRATED = {
    "web": {"build": ".", "depends_on": {"migrate": {"condition": "service_completed_successfully"},
                                         "db": {"condition": "service_started", "restart": True}}},
    "migrate": {"build": ".", "command": "migrate", "depends_on": ["db"]},
    "db": {"build": ".", "volumes": ["data:/data"]},
}


def test_a_service_waited_for_to_complete_is_a_one_shot_job_run_before_its_dependents():
    project = read(MIGRATED, volumes={"data": {}})
    assert [(s.name, s.role) for s in project.services] == [("db", Role.STATEFUL), ("migrate", Role.JOB),
                                                            ("web", Role.WEB)]
    assert project.web.depends_on == (("migrate", "service_completed_successfully"), ("db", "service_started"))


def test_the_web_service_cannot_be_a_job_nor_depend_on_a_replaced_worker():
    found = problems({"web": {"build": "."}, "w": {"build": ".", "depends_on": {
        "web": {"condition": "service_completed_successfully"}}}})
    assert any(p.startswith("services.web: the web service serves the app's domains") for p in found), found
    found = problems({"web": {"build": ".", "depends_on": {"m": {"condition": "service_completed_successfully"}}},
                      "m": {"build": ".", "depends_on": ["w"]}, "w": {"build": "."}})
    assert any("services.m.depends_on.w: a job service can depend only on" in p for p in found), found


def test_the_stateless_services_the_web_one_depends_on_are_its_chain_a_volume_ends_it():
    project = read({"web": {"build": ".", "depends_on": ["backend"]},
                    "backend": {"build": ".", "depends_on": ["cache", "db", "migrate"]},
                    "cache": {"build": "."}, "db": {"build": ".", "volumes": ["data:/d"]},
                    "worker": {"build": ".", "depends_on": ["backend"]},
                    "migrate": {"build": ".", "depends_on": {"db": {"condition": "service_started"}}}},
                   volumes={"data": {}})
    roles = {s.name: s.role for s in project.services}
    assert roles == {"web": Role.WEB, "backend": Role.CHAIN, "cache": Role.CHAIN, "db": Role.STATEFUL,
                     "worker": Role.WORKER, "migrate": Role.CHAIN}
    assert [s.name for s in project.of_role(Role.CHAIN)] == ["cache", "migrate", "backend"]
    found = problems({"web": {"build": ".", "depends_on": ["api"]}, "api": {"build": "."},
                      "db": {"build": ".", "volumes": ["data:/d"], "depends_on": ["api"]}}, volumes={"data": {}})
    assert found == ["services.db.depends_on.api: a stateful service can depend only on services that hold state "
                     "(named volumes) or one-shot ones (service_completed_successfully): the others are replaced with "
                     "the web service or after it goes live"]


def test_a_missing_optional_dependency_is_left_out_with_a_notice_a_required_one_is_refused():
    project = read({"web": {"build": ".", "depends_on": {"cache": {"condition": "service_started",
                                                                   "required": False}}}})
    assert project.web.depends_on == ()
    assert project.notices == ("services.web.depends_on.cache: not in this file and not required: left out",)
    found = problems({"web": {"build": ".", "depends_on": {"cache": {"condition": "service_started"}}}})
    assert found == ["services.web.depends_on: there is no service 'cache'"]
    found = problems({"web": {"build": ".", "depends_on": {"w": {"condition": "started", "restart": "yes"}}},
                      "w": {"build": "."}})
    assert "services.web.depends_on.w.condition: 'started': one of service_started" in found[0]


@pytest.mark.parametrize("definition, policy", [
    ({}, "unless-stopped"), ({"restart": "no"}, "no"), ({"restart": "on-failure:3"}, "on-failure:3"),
    ({"deploy": {"restart_policy": {"condition": "on-failure", "max_attempts": 5}}}, "on-failure:5"),
    ({"restart": "always", "deploy": {"restart_policy": {"condition": "none"}}}, "no"),
    ({"deploy": {"restart_policy": {"condition": "any"}}}, "always"),
])
def test_restart_and_deploy_restart_policy_become_one_docker_policy(definition, policy):
    assert read({"web": {"build": ".", **definition}}).web.restart == policy


def test_a_restart_policy_docker_cannot_honour_is_refused_delay_and_window_said_in_a_notice():
    assert docker_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert docker_policy("always") == {"Name": "always"}
    project = read({"web": {"build": ".", "deploy": {"restart_policy": {"condition": "on-failure", "delay": "5s",
                                                                          "window": "1m"}}}})
    assert project.notices == ("services.web.deploy.restart_policy.delay: ignored: Docker restarts with its own "
                               "growing delay", "services.web.deploy.restart_policy.window: ignored: Docker restarts "
                               "with its own growing delay")
    assert problems({"web": {"build": ".", "restart": "on-failure:x"}})[0].startswith(
        "services.web.restart: 'on-failure:x': one of no, always")
    assert problems({"web": {"build": ".", "deploy": {"restart_policy": {"condition": "any", "max_attempts": 2}}}}) == [
        "services.web.deploy.restart_policy.max_attempts: Docker counts attempts only with condition: on-failure"]


def test_networks_are_the_apps_network_aliases_are_honoured_what_is_not_done_is_said():
    project = read({"web": {"build": ".", "networks": ["front"]},
                    "api": {"build": ".", "networks": {"front": {"aliases": ["backend", "api.local"],
                                                                 "ipv4_address": "10.0.0.5"}, "default": None}}},
                   networks={"front": {"driver": "bridge", "internal": True}})
    assert project.service("api").aliases == ("backend", "api.local") and project.web.aliases == ()
    assert project.notices == (
        "networks.front: driver, internal ignored: it is the app's own network (a bridge with an address range and "
        "egress rules of Switchyard's)",
        "services.api.networks.front: ipv4_address ignored: addresses come from the app's network; services find each "
        "other by name")


@pytest.mark.parametrize("services, top, expected", [
    ({"web": {"build": ".", "networks": ["back"]}}, {}, "services.web.networks.back: not declared under the top-level"),
    ({"web": {"build": "."}}, {"networks": {"outside": {"external": True}}}, "networks.outside.external: not supported"),
    ({"web": {"build": ".", "network_mode": "host"}}, {}, "services.web.network_mode: host not supported"),
    ({"web": {"build": ".", "network_mode": "container:abc"}}, {}, "services.web.network_mode: container:abc not"),
    ({"web": {"build": ".", "networks": {"default": {"aliases": ["a b"]}}}}, {},
     "services.web.networks.default.aliases: 'a b': a host name"),
])
def test_networks_that_would_reach_outside_the_app_are_refused_by_name(services, top, expected):
    assert any(p.startswith(expected) for p in problems(services, **top)), problems(services, **top)


def test_hostname_stdin_open_and_hooks_are_read():
    web = read({"web": {"build": ".", "hostname": "front", "stdin_open": True,
                        "post_start": [{"command": "sh -c 'echo up'", "user": "root", "environment": ["A=1"]}],
                        "pre_stop": [{"command": ["./drain"], "working_dir": "/app"}]}}).web
    assert (web.hostname, web.stdin_open) == ("front", True)
    assert web.post_start == (Hook(command=("sh", "-c", "echo up"), user="root", environment=(("A", "1"),)),)
    assert web.pre_stop == (Hook(command=("./drain",), working_dir="/app"),)


def test_a_privileged_or_empty_hook_is_refused_by_name():
    found = problems({"web": {"build": ".", "post_start": [{"command": "x", "privileged": True}],
                              "pre_stop": [{"user": "root"}, "not a mapping"]}})
    assert found == ["services.web.post_start[0].privileged: not supported: it would loosen the app's confinement "
                     "(a hook runs confined as its container)",
                     "services.web.pre_stop[0].command: a command, as a string or a list of strings",
                     "services.web.pre_stop[1]: a mapping with a command"]


def test_a_deployment_records_its_pre_stop_hooks_and_gets_them_back_as_they_were_read():
    """What whatever stops its containers later runs (engine/hooks.py), encrypted: a hook's
    environment may hold the app's variables, which are encrypted at rest."""
    project = read({"web": {"build": ".", "pre_stop": [{"command": ["./drain"], "user": "1000", "working_dir": "/app",
                                                         "environment": {"TOKEN": "s3cret-value"}}]},
                    "db": {"build": ".", "volumes": ["data:/data"], "pre_stop": [{"command": "pg_ctl stop"}]},
                    "w": {"build": "."}}, volumes={"data": {}})
    stored = Deployment(encrypted_pre_stop=Deployment.sealed_pre_stop(hooks.recorded_pre_stop(project)))
    assert "s3cret-value" not in stored.encrypted_pre_stop
    assert hooks.web_pre_stop(stored) == project.web.pre_stop != ()
    assert hooks.services_pre_stop(stored) == {"db": (Hook(command=("pg_ctl", "stop")),)}
    recorded_before = Deployment()  # a release deployed before hooks were recorded: none
    assert (hooks.web_pre_stop(recorded_before), hooks.services_pre_stop(recorded_before)) == ((), {})
