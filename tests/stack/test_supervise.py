"""`manage.py supervise` renders the Procfile as supervisord's config: supervisord runs each command
whole (its config parser would cut a value at ` ;` or ` #`) from a directory whatever its name
(`%` is an expansion there)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from deployments.management.commands import supervise

SUPERVISORD = Path(sys.executable).parent / "supervisord"


def test_a_command_with_semicolons_hashes_and_percents_runs_whole_in_a_directory_with_a_percent(tmp_path):
    root, data = tmp_path / "checkout 100%", tmp_path / "data 50%(here)s"
    root.mkdir()
    data.mkdir()
    said = "one ; two # three ;four #five 100% %(here)s"
    config = data / "supervisord.conf"
    config.write_text(supervise.render({"odd": f"printf '%s\\n' '{said}' > said.txt"}, data, root=root))

    process = subprocess.Popen([str(SUPERVISORD), "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (root / "said.txt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert (root / "said.txt").read_text() == said + "\n", output


def test_a_path_that_supervisords_config_cannot_hold_is_refused_with_the_reason(tmp_path):
    with pytest.raises(CommandError, match="cannot hold a path with a space before ';'"):
        supervise.render({"web": "true"}, tmp_path / "data ;x")
