"""A stateful service is known by what its image is built from (images.built_from), not only by
its image ID, against the real stack: when a rebuild from the same files gets a new ID (the classic builder takes the
newest of sibling cache entries, so a build that raced with another one, here or in another
installation on the daemon, or whose cache was pruned, makes a new image of the same files), the
store keeps running; when its files change, it is replaced."""
import pytest

from deployments.dockerd import images
from deployments.dockerd.values import LABEL_BUILD_BASES, ServiceRelease
from deployments.models import Deployment
from tests.support.composerepo import ComposeRepo

NEW_ID_SAME_FILES = "sha256:" + "0" * 64


@pytest.fixture
def compose_repo(tmp_path) -> ComposeRepo:
    return ComposeRepo(tmp_path / "repo")


def store_of(deployment: Deployment) -> ServiceRelease:
    return next(s for s in deployment.services if s.name == "store")


def as_if_rebuilt_with_a_new_id(deployment: Deployment) -> None:
    """The live release's store recorded with another image ID, as a cache race leaves it."""
    deployment.services = [ServiceRelease(**{**vars(s), "image_id": NEW_ID_SAME_FILES}) if s.name == "store" else s
                           for s in deployment.services]
    deployment.save(update_fields=["services"])


def test_a_store_rebuilt_from_the_same_files_keeps_running_and_one_whose_files_changed_is_replaced(stack, compose_repo):
    compose_repo.commit_release("v1")
    app = stack.create_app(compose_repo, name="inputs", compose_file="compose.yaml", health_deadline=60)
    first = stack.deploy_and_wait(app)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    store = store_of(first)
    assert len(store.built_from) == 64 and store.built_from == images.built_from(store.image)
    assert LABEL_BUILD_BASES in images.image_facts(store.image).labels
    as_if_rebuilt_with_a_new_id(first)

    compose_repo.commit_release("v2")
    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert store_of(second).containers == store.containers and store_of(second).started_by == first.id
    assert (f"[store] unchanged (its new build has a new image ID from the same inputs: it keeps the image it "
            f"runs): keeps running ({store.containers[0].name})") in second.log_lines.values_list("text", flat=True)

    (compose_repo.path / "store" / "VERSION").write_text("2")  # the store's build context changes
    compose_repo._commit("the store's files change")
    third = stack.deploy_and_wait(app)

    assert third.state == Deployment.State.SUCCEEDED, third.error
    assert store_of(third).started_by == third.id and store_of(third).built_from != store.built_from
    assert any(line.startswith("[store] changed: stopping") for line in third.log_lines.values_list("text", flat=True))
