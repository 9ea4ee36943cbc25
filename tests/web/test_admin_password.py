"""The generated admin password never reaches the command's output (under Compose that output is
a container log): it is written to a file only its owner can read."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
def test_generated_admin_password_goes_to_a_private_file_not_to_the_output(transactional_db, client):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"}
    environment.pop("SWITCHYARD_ADMIN_PASSWORD", None)
    result = subprocess.run([sys.executable, "manage.py", "ensure_admin"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    path = Path(settings.DATA_DIR) / "admin-password"
    password = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in result.stdout + result.stderr and str(path) in result.stdout
    assert client.post("/login/", {"username": "admin", "password": password}).status_code == 302
    path.unlink()
