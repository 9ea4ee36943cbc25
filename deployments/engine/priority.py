"""A deployment's own thread runs ahead of app traffic on a busy host, when it may.

Between "healthy" and "serving" (and between "broken" and "rolled back") the worker mostly
waits for the CPU: on 2 cores busy with the apps it deploys, each database write, lock and
HAProxy round trip of the switch took 1 to 70 ms instead of well under 1 ms (measured by
the benchmark's load). A deployment's own work is small (polls, a few queries, log lines;
the build runs in dockerd), so putting it ahead costs the apps little. Linux keeps the nice
value per thread: other tasks of the worker are not affected, and threads the deployment
starts (heartbeat, log publisher) inherit it, which is right, they are part of it. Without
the privilege to raise priority (CAP_SYS_NICE, e.g. not root) the deployment runs unchanged.
"""
import os
from contextlib import contextmanager
from typing import Iterator

RAISED_NICE = -10


@contextmanager
def raised() -> Iterator[bool]:
    """Run the block at a higher scheduling priority; yields whether that was allowed."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, RAISED_NICE)
    except PermissionError:
        yield False
        return
    try:
        yield True
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)  # lowering priority needs no privilege
