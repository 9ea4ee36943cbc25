"""An image built once and pushed to the fleet's registry is pulled by digest on every host before
anything switches: the same image everywhere; a digest the registry does not have fails the
pre-pull naming every host, and a reference by tag is refused."""
import shutil
import tempfile
from pathlib import Path

import pytest

from deployments.fleet import images
from tests.multihost.conftest import healthy

MISSING = "sha256:" + "0" * 64


def _pushed_image(rig) -> str:
    """FROM scratch with busybox, built on h1's own Docker and pushed; its reference by digest."""
    context = Path(tempfile.mkdtemp(prefix="switchyard-rig-image-"))
    try:
        shutil.copy("/bin/busybox", context / "busybox")
        (context / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "httpd", "-f"]\n')
        builder = rig.hosts[0].docker()
        repository = f"{rig.registry_address}/fleet-test/web"
        image, _ = builder.images.build(path=str(context), tag=f"{repository}:v1", rm=True)
        builder.images.push(repository, tag="v1")
        reference = builder.images.get(image.id).attrs["RepoDigests"][0]
        builder.images.remove(image.id, force=True)  # h1 too has to pull it
        return reference
    finally:
        shutil.rmtree(context)


def test_every_host_pulls_the_image_by_digest_and_a_missing_digest_names_every_host(fleet, rig):
    for host in rig.hosts:
        fleet.start(fleet.add(host))
    healthy(fleet, "h1", "h2", "h3")
    reference = _pushed_image(rig)
    assert "@sha256:" in reference

    pulled = images.pre_pull(["h1", "h2", "h3"], reference)

    assert set(pulled) == {"h1", "h2", "h3"} and len(set(pulled.values())) == 1 and all(pulled.values())
    assert all(host.docker().images.get(reference).id == pulled["h1"] for host in rig.hosts)
    missing = reference.split("@")[0] + "@" + MISSING
    with pytest.raises(images.PrePullFailed) as failed:
        images.pre_pull(["h1", "h2", "h3"], missing, timeout=60)
    assert all(f"{name}: " in str(failed.value) for name in ("h1", "h2", "h3"))
    with pytest.raises(ValueError, match="by digest"):
        images.pre_pull(["h1"], reference.split("@")[0] + ":v1")
