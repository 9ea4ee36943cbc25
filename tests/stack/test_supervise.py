"""`manage.py supervise` renders the Procfile as supervisord's config: supervisord runs each command
whole (its config parser would cut a value at ` ;` or ` #`) from a directory whatever its name
(`%` is an expansion there)."""
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from deployments.management.commands import supervise
from tests.support.eventually import eventually

SUPERVISORD = Path(sys.executable).parent / "supervisord"


@pytest.fixture
def short_tmp_path():
    """supervisord's socket is in the data dir, and a Unix socket's path holds at most 107 bytes:
    pytest's tmp_path (longer still under xdist) can be past that."""
    with tempfile.TemporaryDirectory(prefix="sv-") as directory:
        yield Path(directory)


def test_a_command_with_semicolons_hashes_and_percents_runs_whole_in_a_directory_with_a_percent(short_tmp_path):
    root, data = short_tmp_path / "checkout 100%", short_tmp_path / "data 50%(here)s"
    root.mkdir()
    data.mkdir()
    said = "one ; two # three ;four #five 100% %(here)s"
    config = data / "supervisord.conf"
    config.write_text(supervise.render({"odd": f"printf '%s\\n' '{said}' > said.txt"}, data, root=root))

    process = subprocess.Popen([str(SUPERVISORD), "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # A whole line, read once: supervisord starts the command again once it has exited, and
        # each start empties the file before printf writes it.
        line = eventually(lambda: _whole_line(root / "said.txt") or (process.poll() is not None and "(exited)"),
                          "the command's line in said.txt", 20, interval=0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert line == said + "\n", output


def _whole_line(path: Path) -> str | None:
    text = path.read_text() if path.exists() else ""
    return text if text.endswith("\n") else None


def test_a_path_that_supervisords_config_cannot_hold_is_refused_with_the_reason(tmp_path):
    with pytest.raises(CommandError, match="cannot hold a path with a space before ';'"):
        supervise.render({"web": "true"}, tmp_path / "data ;x")
