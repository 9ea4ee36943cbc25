"""Fixtures shared by several files of the stack tests."""
import pytest

from tests.support import certworld
from tests.support.docker_registry import LocalRegistry


@pytest.fixture
def cert_world(stack, app_repo, django_user_model) -> certworld.World:
    """A victim tenant's app served over HTTPS and an attacker's app (tests/support/certworld.py)."""
    return certworld.create_world(stack=stack, app_repo=app_repo, user_model=django_user_model)


@pytest.fixture
def registry(tmp_path):
    """A real registry the workers trust (tests/support/docker_registry.py); stopped afterwards,
    every image pushed to or pulled from it removed."""
    served = LocalRegistry(tmp_path / "registry").start()
    yield served
    served.stop()


@pytest.fixture
def auth_registry(tmp_path):
    """The same behind htpasswd: only the app's credentials pull from it."""
    served = LocalRegistry(tmp_path / "registry", username="puller", password="pull-S3cret").start()
    yield served
    served.stop()
