"""Fixtures shared by several files of the stack tests."""
import pytest

from tests.support import certworld


@pytest.fixture
def cert_world(stack, app_repo, django_user_model) -> certworld.World:
    """A victim tenant's app served over HTTPS and an attacker's app (tests/support/certworld.py)."""
    return certworld.create_world(stack=stack, app_repo=app_repo, user_model=django_user_model)
