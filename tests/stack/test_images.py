"""The last successful images of an app stay for rollback; older ones are removed."""
from deployments.dockerd import images
from deployments.models import Deployment


def test_only_the_last_five_successful_images_are_kept(stack, app_repo):
    app_repo.commit_version("v0")
    app = stack.create_app(app_repo)
    deployments = []
    for version in range(7):
        if version:
            app_repo.commit_version(f"v{version}")
        deployments.append(stack.deploy_and_wait(app))
    assert all(d.state == Deployment.State.SUCCEEDED for d in deployments)

    kept = set(images.app_images(app.image_repository()))
    assert kept == {d.image for d in deployments[-5:]}
    assert stack.get(f"{app.name}.localhost") == (200, "v6")
