"""bench/RESULTS.md is assembled from sections that each benchmark replaces in place."""
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    cores = len(__import__("os").sched_getaffinity(0))
    memory = round(int(open("/proc/meminfo").read().split()[1]) / 1024 / 1024)
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {cores} cores, {memory} GiB · "
            f"Python {platform.python_version()} · {haproxy}")


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
