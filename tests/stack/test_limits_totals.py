"""A user's totals count what runs and hold when deploys or creates come at once: a limit lowered
without a redeploy frees nothing, two deploys that together pass the memory quota cannot both go
live, two creates cannot both take the last app."""
import threading

import pytest
from django.db import connection

from deployments.application.errors import InvalidInput
from deployments.dockerd import containers, daemon
from deployments.models import App, Deployment, Quota
from tests.support.tenancy import MIB, commit_compose, deploy_by_api, make_tenant, own_app, patch_app, token_client



def test_a_limit_lowered_without_a_redeploy_frees_no_memory_for_the_owners_other_apps(stack, app_repo):
    app_repo.commit_version("v1")
    tenant = make_tenant()
    Quota.objects.create(user=tenant, memory_mb=768)
    own_app(app_repo, tenant, "big-one")  # 512 MiB, the default
    api = token_client(tenant)
    live = stack.wait(deploy_by_api(api, "big-one"), timeout=180)
    assert live.state == Deployment.State.SUCCEEDED, live.error
    assert (live.memory_limit_mb, live.container_count) == (512, 1)

    # Lowered, not redeployed: the running container keeps its 512 MiB.
    assert patch_app(api, "big-one", {"memory_limit_mb": 64}).status_code == 200
    assert daemon.client().api.inspect_container(live.containers[0].id)["HostConfig"]["Memory"] == 512 * MIB

    # Another app of 512 MiB: refused at create and in its settings, with the reason.
    response = api.post("/api/apps", {"name": "second", "repo_url": "https://git.example.com/second.git",
                                      "memory_limit_mb": 512}, content_type="application/json")
    assert response.status_code == 400
    assert "1024 MiB of memory in all" in response.json()["detail"]
    assert "SWITCHYARD_USER_MAX_MEMORY_MB" in response.json()["detail"]
    own_app(app_repo, tenant, "small-one", settings={"memory_limit_mb": 64})
    response = patch_app(api, "small-one", {"memory_limit_mb": 512})
    assert response.status_code == 400 and "1024 MiB of memory in all" in response.json()["detail"]

    # ...and at deploy (the administrator lowered the quota since): counted with big-one's 512.
    Quota.objects.filter(user=tenant).update(memory_mb=560)
    refused = stack.wait(deploy_by_api(api, "small-one"), timeout=120)
    assert refused.state == Deployment.State.FAILED and refused.phase == "fetch"
    assert "576 MiB of memory in all" in refused.error and "SWITCHYARD_USER_MAX_MEMORY_MB" in refused.error
    assert stack.get("big-one.localhost") == (200, "v1")

    # Redeployed at 64 MiB, big-one frees the rest.
    assert stack.wait(deploy_by_api(api, "big-one"), timeout=180).state == Deployment.State.SUCCEEDED
    assert stack.wait(deploy_by_api(api, "small-one"), timeout=180).state == Deployment.State.SUCCEEDED
    assert stack.get("small-one.localhost") == (200, "v1")


def test_two_deploys_at_once_that_together_pass_the_memory_quota_one_goes_live_the_other_fails(stack, app_repo):
    """Compose apps: the containers of each are known at deploy (2), their settings say 1, so
    each deploy alone fits; both at once must not."""
    app_repo.commit_version("v1")
    commit_compose(app_repo, "services:\n  web:\n    build: .\n    deploy: {replicas: 2}\n")
    tenant = make_tenant()
    Quota.objects.create(user=tenant, memory_mb=768)
    for name in ("twin-a", "twin-b"):  # 2 × 256 MiB each at deploy; 768 MiB allowed
        own_app(app_repo, tenant, name, compose_file="compose.yaml", settings={"memory_limit_mb": 256})
    api = token_client(tenant)
    start, sent = threading.Barrier(2), {}

    def deploy(name: str) -> None:
        try:
            start.wait(10)
            sent[name] = deploy_by_api(token_client(tenant), name).pk
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy, args=(name,)) for name in ("twin-a", "twin-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ended = {name: stack.wait(Deployment.objects.get(pk=pk), timeout=240) for name, pk in sent.items()}

    states = sorted(deployment.state for deployment in ended.values())
    assert states == [Deployment.State.FAILED, Deployment.State.SUCCEEDED], {n: d.error for n, d in ended.items()}
    failed = next(d for d in ended.values() if d.state == Deployment.State.FAILED)
    assert "1024 MiB of memory in all" in failed.error and "SWITCHYARD_USER_MAX_MEMORY_MB" in failed.error
    winner = next(name for name, d in ended.items() if d.state == Deployment.State.SUCCEEDED)
    assert stack.get(f"{winner}.localhost") == (200, "v1")
    memory = sum(daemon.client().api.inspect_container(c.id)["HostConfig"]["Memory"] for c in containers.listed()
                 if c.app in ended)
    assert memory == 512 * MIB
    assert api.get(f"/api/apps/{winner}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_cannot_both_take_the_owners_last_app(app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = make_tenant()
    Quota.objects.create(user=tenant, apps=1)
    start, outcome = threading.Barrier(2), {}

    def create(name: str) -> None:
        try:
            start.wait(10)
            own_app(app_repo, tenant, name)
            outcome[name] = "created"
        except InvalidInput as error:
            outcome[name] = str(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(f"race-{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert App.objects.filter(owner=tenant).count() == 1
    assert sorted(outcome.values())[0] == "created"
    assert "SWITCHYARD_USER_MAX_APPS" in sorted(outcome.values())[1], outcome
