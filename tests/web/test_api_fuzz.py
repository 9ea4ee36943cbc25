"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis): whatever
a client sends, as an ordinary user who owns an app or as an outsider, the answer is never
a 500. Every operation gets the same cases each run (a fixed seed), a bounded number of
them, valid ones and invalid ones. Nothing leaves the machine: tests/support/settings.py lets git
use no transport but local files, and a local repository is refused to both users (they are
not superusers), so a fuzzed repository URL goes nowhere.

Hypothesis runs the cases here rather than schemathesis' pytest plugin: its lazy loader,
needed to fuzz an app made by a fixture, does not run under pytest 9."""
import time

from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi import from_wsgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from deployments.application import apps, deploys
from deployments.application.app_settings import SETTINGS_FIELDS, AppSpec
from deployments.audit import Actor
from deployments.models import ApiToken, App, Deployment, LogLine

APP = "fuzzed"
MAX_EXAMPLES = 20  # per operation and mode, each sent as both users (26 operations: about 2,000 requests)
SEED = 20261123  # the same cases every run, whatever else changes in this file
# not_a_server_error is the point. The two conformance checks hold too: documented answers
# have the documented shape and type. Left out: status_code_conformance (401/403/404/409/422
# are answered by design but not listed per operation), negative_data_rejection and
# positive_data_acceptance (the API's own rules, e.g. a repository it cannot read or a
# name taken, are stricter than the schema can say, and ninja fills in omitted optionals).
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
USERS = ("outsider", "owner")  # the outsider first: the owner's call may delete the app


def test_no_request_to_the_api_gets_a_server_error(stack, app_repo, django_user_model):
    world = _world(stack, app_repo, django_user_model)
    schema = from_wsgi("/api/openapi.json", get_wsgi_application())
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda operation: operation.method == "delete")  # delete last: it ends the app
    failures, calls, started = [], [], time.monotonic()

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, world, failures, calls)

    stack.wait_until_idle()  # what the fuzzed deploys queued has ended
    print(f"fuzzed {len(operations)} operations: {len(calls)} requests in {time.monotonic() - started:.0f} s")
    assert len(operations) >= 14 and len(calls) > len(operations) * MAX_EXAMPLES * 2  # of at most 4 per example
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n{len(failures)} failures in all"


def _world(stack, app_repo, django_user_model) -> dict:
    """An ordinary user's app, created as the CLI does, with a live release, log lines and a
    queued deployment, and a token for that user and one for an outsider."""
    app_repo.commit_version("v1")
    owner, outsider = (django_user_model.objects.create_user(name) for name in USERS[::-1])
    app = apps.create_app(AppSpec.of(name=APP, repo_url=app_repo.url), actor=Actor.cli("test"), owner=owner)
    release = stack.deploy_and_wait(app)
    assert release.state == Deployment.State.SUCCEEDED, release.error
    LogLine.objects.bulk_create(LogLine(deployment=release, seq=seq, text=f"extra {seq}") for seq in (10_001, 10_002))
    queued = deploys.deploy(app, ref="main", actor=Actor.cli("test"))
    return {"deployments": [release.pk, queued.pk],
            "tokens": {"owner": ApiToken.issue(owner, "fuzz")[1], "outsider": ApiToken.issue(outsider, "fuzz")[1]}}


def _fuzz(operation, mode: GenerationMode, world: dict, failures: list[str], calls: list[int]) -> None:
    """Send each case as each user; record failed checks instead of raising, so one run
    reports every operation's 500s (and hypothesis does not shrink against a live server)."""

    @given(case=operation.as_strategy(generation_mode=mode), own=st.booleans(),
           deployment=st.sampled_from(world["deployments"]))
    @seed(SEED)
    @settings(max_examples=MAX_EXAMPLES, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case, own: bool, deployment: int) -> None:
        # Half the cases name the real app and deployments, or nearly all would end in a 404.
        if own and "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = APP
        if own and "deployment_id" in (case.path_parameters or {}):
            case.path_parameters["deployment_id"] = deployment
        for user in USERS:
            response = case.call(headers={"Authorization": f"Bearer {world['tokens'][user]}"})
            calls.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as failure:
                failures.append(f"as {user}, {mode.value}: {failure.message}")

    run()


def test_null_for_a_setting_is_refused_with_400_and_changes_nothing(stack, app_repo, django_user_model):
    """Found by the fuzzer: {"health_host": null} passed validation (the column may be blank)
    and failed on NOT NULL when saved, a 500."""
    app_repo.commit_version("v1")
    owner = django_user_model.objects.create_user("owner")
    app = apps.create_app(AppSpec.of(name=APP, repo_url=app_repo.url), actor=Actor.cli("test"), owner=owner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(owner, 'fuzz')[1]}")
    before = App.objects.filter(pk=app.pk).values().get()

    for name in SETTINGS_FIELDS:
        response = client.patch(f"/api/apps/{APP}", {name: None}, content_type="application/json")

        assert response.status_code == 400, (name, response.content)
        assert f"{name}: must not be null" in response.json()["detail"]
        assert App.objects.filter(pk=app.pk).values().get() == before
