"""A deploy whose build would read exactly what an earlier build of the app read (the build
context's git tree, the checked Dockerfile, its target and build arguments) reuses that image and
builds nothing (engine/phases/build.py); a changed source is built, and another app never gets
this app's image, whatever its source."""
from deployments.dockerd import daemon, images
from deployments.dockerd.values import LABEL_APP, LABEL_APP_ID, LABEL_BUILD_BASES, LABEL_INSTANCE, LABEL_SOURCE
from deployments.models import Deployment

REUSED = "Reused image "


def _log(deployment: Deployment) -> list[str]:
    return list(deployment.log_lines.values_list("text", flat=True))


def test_an_unchanged_tree_reuses_its_image_and_a_changed_one_never_does(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="reuse")
    first = stack.deploy_and_wait(app)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert not any(line.startswith(REUSED) for line in _log(first))
    _labelled_in_one_step(first.image)

    app_repo._git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "--allow-empty",
                  "-m", "nothing the build reads")
    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert second.commit_sha != first.commit_sha and second.image.endswith(second.commit_sha[:12])
    assert images.image_id(second.image) == images.image_id(first.image)
    log = _log(second)
    assert any(line.startswith(REUSED) and second.image in line and "unchanged" in line for line in log), log
    assert not any(line.startswith("Step ") for line in log), log  # no build ran
    assert stack.get("reuse.localhost") == (200, "v1")

    app_repo.commit_version("v2")
    third = stack.deploy_and_wait(app)

    assert third.state == Deployment.State.SUCCEEDED, third.error
    assert not any(line.startswith(REUSED) for line in _log(third))
    assert images.image_id(third.image) != images.image_id(first.image)
    assert stack.get("reuse.localhost") == (200, "v2")

    _a_tree_that_git_archive_stamps_with_its_commit_is_built_again(stack, app, app_repo)

    other = stack.deploy_and_wait(stack.create_app(app_repo, name="reuseother"))  # the same commit, another app
    assert other.state == Deployment.State.SUCCEEDED, other.error
    assert not any(line.startswith(REUSED) for line in _log(other))
    assert images.image_id(other.image) != images.image_id(third.image)


def _labelled_in_one_step(tag: str) -> None:
    """Switchyard's labels on the image, all from one build step (not one per label)."""
    labels = images.image_facts(tag).labels
    assert {LABEL_APP, LABEL_APP_ID, LABEL_BUILD_BASES, LABEL_INSTANCE, LABEL_SOURCE} <= set(labels), labels
    steps = [entry["CreatedBy"] for entry in daemon.client().api.history(tag)]
    assert len([step for step in steps if "LABEL switchyard." in step]) == 1, steps


def _a_tree_that_git_archive_stamps_with_its_commit_is_built_again(stack, app, app_repo) -> None:
    """export-subst: `git archive` writes each commit's hash into www/commit.txt, so an empty
    commit changes what the build reads."""
    app_repo.commit_files({".gitattributes": "www/commit.txt export-subst\n", "www/commit.txt": "$Format:%H$"},
                          "stamp the commit")
    stamped = stack.deploy_and_wait(app)
    assert stamped.state == Deployment.State.SUCCEEDED, stamped.error
    app_repo._git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "--allow-empty",
                  "-m", "the same tree, another commit")
    again = stack.deploy_and_wait(app)
    assert again.state == Deployment.State.SUCCEEDED, again.error
    assert not any(line.startswith(REUSED) for line in _log(again)), _log(again)
    assert stack.get("reuse.localhost", "/commit.txt") == (200, again.commit_sha)
