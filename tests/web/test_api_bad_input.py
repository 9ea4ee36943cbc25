"""The REST API under bad input: every error is JSON {"detail": ...} with the right status, never a
500, and changes nothing; unknown fields cannot reach protected columns; the OpenAPI schema lists
every endpoint."""

import pytest
from django.test import Client

from deployments.models import App, Domain
from tests.support.apiworld import APP, ENDPOINTS, db_state, detail, send
from tests.support.routing import haproxy_files

pytestmark = pytest.mark.usefixtures("dispatched")


# Bad input -----------------------------------------------------------------------------------

NEW = {"name": "new-app", "repo_url": "{repo}"}
BAD_INPUT = {
    # malformed bodies
    "create: malformed JSON": ("post", "/api/apps", '{"name": "x", ', 400, "Cannot parse request body"),
    "patch: malformed JSON": ("patch", "/api/apps/{app}", '{"port": ', 400, "Cannot parse request body"),
    "deploy: form data instead of JSON": ("post", "/api/apps/{app}/deploy", "ref=main", 400, "Cannot parse request body"),
    "patch: body not UTF-8": ("patch", "/api/apps/{app}", b'{"port": "\xff\xfe"}', None, None),
    "create: a JSON list": ("post", "/api/apps", [NEW], 422, "body"),
    "create: a JSON string": ("post", "/api/apps", '"new-app"', 422, None),
    "create: missing name": ("post", "/api/apps", {"repo_url": "{repo}"}, 422, "name"),
    "create: empty object": ("post", "/api/apps", {}, 422, "repo_url"),
    # wrong types
    "create: port abc": ("post", "/api/apps", {**NEW, "port": "abc"}, 422, "port"),
    "create: port 8000.5": ("post", "/api/apps", {**NEW, "port": 8000.5}, 422, "port"),
    "create: replicas 99": ("post", "/api/apps", {**NEW, "replicas": 99}, 422, "replicas"),
    "create: replicas 0": ("post", "/api/apps", {**NEW, "replicas": 0}, 422, "replicas"),
    "create: domains a string": ("post", "/api/apps", {**NEW, "domains": "a.example.com"}, 422, "domains"),
    "create: env a list": ("post", "/api/apps", {**NEW, "env": ["A=1"]}, 422, "env"),
    "create: env value a number": ("post", "/api/apps", {**NEW, "env": {"A": 1}}, 422, "env"),
    "create: zero_downtime a word": ("post", "/api/apps", {**NEW, "zero_downtime": "perhaps"}, 422, "zero_downtime"),
    "create: name a number": ("post", "/api/apps", {**NEW, "name": 42}, 422, "name"),
    "patch: port abc": ("patch", "/api/apps/{app}", {"port": "abc"}, 422, "port"),
    "patch: replicas 99": ("patch", "/api/apps/{app}", {"replicas": 99}, 400, "less than or equal to 8"),
    "patch: domains a string": ("patch", "/api/apps/{app}", {"domains": "a.example.com"}, 422, "domains"),
    "patch: env a list": ("patch", "/api/apps/{app}", {"env": ["A"]}, 422, "env"),
    "patch: auto_deploy a word": ("patch", "/api/apps/{app}", {"auto_deploy": "perhaps"}, 422, "auto_deploy"),
    "patch: canary_steps a string": ("patch", "/api/apps/{app}", {"canary_steps": "5,100"}, 422, "canary_steps"),
    "patch: canary_steps falling": ("patch", "/api/apps/{app}", {"canary_steps": [50, 5, 100]}, 400, "must rise"),
    "patch: canary_steps without 100": ("patch", "/api/apps/{app}", {"canary_steps": [5, 50]}, 400,
                                        "the last canary step must be 100"),
    "patch: canary_steps 101": ("patch", "/api/apps/{app}", {"canary_steps": [5, 101]}, 400, "each between 1 and 100"),
    "patch: canary_step_seconds 0": ("patch", "/api/apps/{app}", {"canary_step_seconds": 0}, 400,
                                     "greater than or equal to 1"),
    "deploy: ref a number": ("post", "/api/apps/{app}/deploy", {"ref": 5}, 422, "ref"),
    # out of range and invalid values
    "create: huge port": ("post", "/api/apps", {**NEW, "port": 10 ** 20}, 400, "port"),
    "create: port 70000": ("post", "/api/apps", {**NEW, "port": 70000}, 400, "less than or equal to 65535"),
    "patch: huge port": ("patch", "/api/apps/{app}", {"port": 10 ** 20}, 400, "port"),
    "patch: port 0": ("patch", "/api/apps/{app}", {"port": 0}, 400, "greater than or equal to 1"),
    "patch: port null": ("patch", "/api/apps/{app}", {"port": None}, 400, "port"),
    "patch: negative stop_timeout": ("patch", "/api/apps/{app}", {"stop_timeout": -1}, 400, "stop_timeout"),
    "patch: health_timeout Infinity": ("patch", "/api/apps/{app}", '{"health_timeout": Infinity}', 422, "health_timeout"),
    "patch: health_path without /": ("patch", "/api/apps/{app}", {"health_path": "health"}, 400, "is not a health check path"),
    "patch: health_host with a newline": ("patch", "/api/apps/{app}", {"health_host": "x.com\n    server evil 127.0.0.2:80"},
                                          400, "is not a Host header"),
    "patch: bad domain": ("patch", "/api/apps/{app}", {"port": 9000, "domains": ["not a host!"]}, 400, "is not a hostname"),
    "patch: localhost domain": ("patch", "/api/apps/{app}", {"domains": ["x.billing-api.localhost"]}, 400, "names are reserved"),
    "patch: another app's domain": ("patch", "/api/apps/{app}", {"domains": ["shop.example.com"]}, 400,
                                    "is already a domain of another app"),
    "patch: missing branch": ("patch", "/api/apps/{app}", {"port": 9000, "branch": "release"}, 400,
                              "branch 'release' does not exist"),
    "patch: bad repo URL": ("patch", "/api/apps/{app}", {"repo_url": "--upload-pack=touch /tmp/pwned"}, 400,
                            "is not a git repository URL"),
    "patch: bad env key": ("patch", "/api/apps/{app}", {"env": {"1BAD": "x"}}, 400, "is not an environment variable name"),
    "create: invalid app name": ("post", "/api/apps", {**NEW, "name": "Bad_Name!"}, 400, "is not a valid app name"),
    "create: over-long name": ("post", "/api/apps", {**NEW, "name": "a" * 33}, 400, "name"),
    "create: very long name": ("post", "/api/apps", {**NEW, "name": "a" * 100_000}, 400, "name"),
    "create: existing name": ("post", "/api/apps", {**NEW, "name": APP}, 400, "already exists"),
    "create: bad repo URL": ("post", "/api/apps", {**NEW, "repo_url": "--upload-pack=touch /tmp/pwned"}, 400,
                             "is not a git repository URL"),
    "create: unreadable repo": ("post", "/api/apps", {**NEW, "repo_url": "https://git.example.com/none.git"}, 400,
                                "cannot read git repository"),
    "create: a path on this machine": ("post", "/api/apps", {**NEW, "repo_url": "/srv/other.git"}, 400,
                                       "only the CLI or a superuser"),
    "patch: a path on this machine": ("patch", "/api/apps/{app}", {"repo_url": "file:///srv/other.git"}, 400,
                                      "only the CLI or a superuser"),
    "create: limits out of range": ("post", "/api/apps", {**NEW, "memory_limit_mb": 1, "pids_limit": 10**6}, 400,
                                    "memory_limit_mb"),
    "patch: CPU limit NaN": ("patch", "/api/apps/{app}", '{"cpu_limit": NaN}', 422, "cpu_limit"),
    "patch: unknown capability": ("patch", "/api/apps/{app}", {"capabilities": "SYS_ADMIN"}, 400,
                                  "not a capability an app may have"),
    "create: branch with shell characters": ("post", "/api/apps", {**NEW, "branch": "main; rm -rf /"}, 400,
                                             "is not a usable git branch"),
    "create: missing branch": ("post", "/api/apps", {**NEW, "branch": "release"}, 400, "branch 'release' does not exist"),
    "create: bad domain": ("post", "/api/apps", {**NEW, "domains": ["not a host!"]}, 400, "is not a hostname"),
    "create: bad env key": ("post", "/api/apps", {**NEW, "env": {"A-B": "x"}}, 400, "is not an environment variable name"),
    "deploy: ref with shell characters": ("post", "/api/apps/{app}/deploy", {"ref": "main; rm -rf /"}, 400,
                                          "is not a usable git branch"),
    "deploy: ref with command substitution": ("post", "/api/apps/{app}/deploy", {"ref": "$(reboot)"}, 400,
                                              "is not a usable git branch"),
    "deploy: ref like an option": ("post", "/api/apps/{app}/deploy", {"ref": "--upload-pack=x"}, 400,
                                   "is not a usable git branch"),
    "deploy: over-long ref": ("post", "/api/apps/{app}/deploy", {"ref": "a" * 201}, 400, "is not a usable git branch"),
    # path and query
    "deployment: huge id": ("get", "/api/deployments/99999999999999999999", None, 422, "deployment_id"),
    "logs: huge id": ("get", "/api/deployments/99999999999999999999/logs", None, 422, "deployment_id"),
    "cancel: huge id": ("post", "/api/deployments/99999999999999999999/cancel", None, 422, "deployment_id"),
    "redeploy: huge id": ("post", "/api/deployments/99999999999999999999/redeploy", None, 422, "deployment_id"),
    "deployment: id 0": ("get", "/api/deployments/0", None, 422, "deployment_id"),
    "deployment: negative id": ("get", "/api/deployments/-1", None, 422, "deployment_id"),
    "deployment: id abc": ("get", "/api/deployments/abc", None, 422, "deployment_id"),
    "deployment: missing id": ("get", "/api/deployments/123456", None, 404, "No such deployment"),
    "logs: negative after": ("get", "/api/deployments/{release}/logs?after=-5", None, 422, "after"),
    "logs: after abc": ("get", "/api/deployments/{release}/logs?after=abc", None, 422, "after"),
    "logs: after 1.5": ("get", "/api/deployments/{release}/logs?after=1.5", None, 422, "after"),
    "logs: empty after": ("get", "/api/deployments/{release}/logs?after=", None, 422, "after"),
    "logs: huge after": ("get", "/api/deployments/{release}/logs?after=99999999999999999999", None, 422, "after"),
    "deployments: limit 0": ("get", "/api/apps/{app}/deployments?limit=0", None, 422, "limit"),
    "deployments: limit abc": ("get", "/api/apps/{app}/deployments?limit=abc", None, 422, "limit"),
    "app: invalid name": ("get", "/api/apps/Bad_Name!", None, 404, "No such app"),
    "app: over-long name": ("get", "/api/apps/" + "a" * 5000, None, 404, "No such app"),
    "patch: invalid app name": ("patch", "/api/apps/Bad_Name!", {"port": 9000}, 404, "No such app"),
    "deploy: invalid app name": ("post", "/api/apps/Bad_Name!/deploy", None, 404, "No such app"),
    "delete: missing app": ("delete", "/api/apps/no-such-app", None, 404, "No such app"),
    # found by this suite and fixed: each once answered 500, changed things, or was taken as empty
    "patch: health_timeout NaN": ("patch", "/api/apps/{app}", '{"health_timeout": NaN}', 422, "health_timeout"),
    "patch: health_deadline NaN": ("patch", "/api/apps/{app}", '{"health_deadline": NaN}', 422, "health_deadline"),
    "create: the same domain twice": ("post", "/api/apps", {**NEW, "repo_url": "https://git.example.com/x.git",
                                      "domains": ["a.example.com", "A.example.com"]}, 400, "cannot read git repository"),
    "create: NUL in repo URL": ("post", "/api/apps", {**NEW, "repo_url": "/tmp/x\u0000y"}, 400,
                                "is not a git repository URL"),
    "patch: NUL in repo URL": ("patch", "/api/apps/{app}", {"repo_url": "/tmp/x\u0000y"}, 400,
                               "is not a git repository URL"),
    "patch: Dockerfile outside the repo": ("patch", "/api/apps/{app}", {"dockerfile": "../../etc/passwd"}, 400,
                                           "is not a Dockerfile path"),
    "patch: compose file outside the repo": ("patch", "/api/apps/{app}", {"compose_file": "../compose.yaml"}, 400,
                                             "is not a compose file path"),
    "create: bad web service name": ("post", "/api/apps", {**NEW, "compose_file": "compose.yaml",
                                                           "web_service": "Web Server"}, 400, "is not a service name"),
    "patch: good port, bad env key": ("patch", "/api/apps/{app}", {"port": 9000, "env": {"1BAD": "x"}}, 400,
                                      "is not an environment variable name"),
    "patch: switch, bad env key": ("patch", "/api/apps/{app}", {"zero_downtime": False, "env": {"1BAD": "x"}}, 400,
                                   "is not an environment variable name"),
    "patch: good and bad env keys": ("patch", "/api/apps/{app}", {"env": {"GOOD": "x", "1BAD": "y"}}, 400,
                                     "is not an environment variable name"),
    "patch: a number as body": ("patch", "/api/apps/{app}", "5", 422, "JSON object"),
    "patch: a list as body": ("patch", "/api/apps/{app}", [], 422, "JSON object"),
    "patch: true as body": ("patch", "/api/apps/{app}", "true", 422, "JSON object"),
    "deploy: a number as body": ("post", "/api/apps/{app}/deploy", "5", 422, "JSON object"),
    "deploy: a string as body": ("post", "/api/apps/{app}/deploy", '"main"', 422, "JSON object"),
    "deploy: a list as body": ("post", "/api/apps/{app}/deploy", [], 422, "JSON object"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_a_json_error_with_the_right_status_never_a_500_and_changes_nothing(api_world, redis_server,
                                                                                           dispatched, case):
    method, path, body, status, fragment = BAD_INPUT[case]
    other = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=api_world.users["outsider"])
    Domain.objects.create(app=other, hostname="shop.example.com")
    if isinstance(body, dict):
        body = {k: (v.replace("{repo}", api_world.remote_url) if isinstance(v, str) else v) for k, v in body.items()}
    before, files_before = db_state(), haproxy_files()

    response = send(api_world.client("owner"), method, api_world.path(path), body)

    assert response.status_code < 500
    message = detail(response)
    if status is not None:
        assert response.status_code == status, message
    else:
        assert 400 <= response.status_code < 500
    if fragment is not None:
        assert fragment in message
    assert db_state() == before
    assert haproxy_files() == files_before
    assert dispatched == []


def test_the_same_domain_twice_in_one_request_is_kept_once(api_world, redis_server):
    response = send(api_world.client("owner"), "patch", api_world.path("/api/apps/{app}"),
                    {"domains": ["a.example.com", "A.example.com", "a.example.com"]})

    assert response.status_code == 200, detail(response)
    assert response.json()["domains"] == ["a.example.com"]


@pytest.mark.parametrize("body", [
    {"owner": 1, "webhook_secret": "chosen-by-attacker", "live_deployment": 1, "live_colour": "green", "name": "renamed"},
    {"port": 9000, "webhook_secret": "chosen-by-attacker", "id": 999, "created_at": "2000-01-01T00:00:00Z"},
])
def test_unknown_fields_in_a_patch_are_ignored_and_cannot_change_protected_columns(api_world, redis_server, body):
    protected = App.objects.filter(pk=api_world.app.pk).values(
        "id", "name", "owner_id", "webhook_secret", "live_deployment_id", "live_colour", "created_at").get()

    response = api_world.client("admin").patch(f"/api/apps/{APP}", body, content_type="application/json")

    assert response.status_code == 200
    assert App.objects.filter(pk=api_world.app.pk).values(*protected).get() == protected
    assert response.json()["webhook_secret"] == protected["webhook_secret"]


def test_unknown_fields_in_a_create_are_ignored_and_cannot_choose_the_owner_or_secret(api_world, redis_server):
    response = api_world.client("viewer").post("/api/apps", {
        "name": "new-app", "repo_url": api_world.remote_url, "owner": api_world.users["superuser"].pk,
        "webhook_secret": "chosen-by-attacker", "auto_deploy": False, "live_colour": "green"},
        content_type="application/json")

    assert response.status_code == 201
    app = App.objects.get(name="new-app")
    assert app.owner == api_world.users["viewer"]
    assert app.webhook_secret != "chosen-by-attacker" and app.live_colour == "blue"


# OpenAPI -------------------------------------------------------------------------------------

def test_openapi_schema_is_served_and_lists_every_endpoint():
    response = Client().get("/api/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    expected = {(method, template.replace("{app}", "{name}").replace("{release}", "{deployment_id}")
                 .replace("{queued}", "{deployment_id}")) for method, template in ENDPOINTS.values()}
    assert expected <= operations
    assert len(expected) == len(ENDPOINTS)
    assert any(scheme.get("scheme") == "bearer" for scheme in schema["components"]["securitySchemes"].values())
    app_out = schema["components"]["schemas"]["AppOut"]["properties"]
    assert "webhook_secret" in app_out and "env_keys" in app_out and "env" not in app_out
