"""bench/RESULTS.md is assembled from sections that each benchmark replaces in place."""
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """Where and with what the numbers were measured: enough to tell two runs apart."""
    cores = len(os.sched_getaffinity(0))
    memory = round(int(open("/proc/meminfo").read().split()[1]) / 1024 / 1024)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    tools = " · ".join(filter(None, [_first_line(["haproxy", "-v"]), _first_line(["docker", "--version"]),
                                     _first_line(["nginx", "-v"])]))
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {cores} cores ({cpu}), {memory} GiB · "
            f"Linux {platform.release()} · Python {platform.python_version()} · Django {version('django')} · "
            f"Celery {version('celery')} · {tools} · Switchyard {_first_line(['git', 'rev-parse', '--short', 'HEAD'])}")


def _first_line(command: list[str]) -> str:
    """A tool's version line; nginx prints it on stderr. Empty if the tool is missing."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=RESULTS.parent)
    except FileNotFoundError:
        return ""
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else ""


def replace_section(name: str, text: str) -> None:
    """Replace the text between this section's markers (or append it), with the machine line."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{text}\nMeasured: {machine()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else "# Switchyard benchmarks\n\nRun with `make bench`.\n"
    if start in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(current)
