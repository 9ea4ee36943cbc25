"""A deployment's own thread runs ahead of app traffic on a busy host, when it may.

Between "healthy" and "serving" (and between "broken" and "rolled back") the worker mostly
waits for the CPU: on 2 cores busy with the apps it deploys, each database write, lock and
HAProxy round trip of the switch took 1 to 70 ms instead of well under 1 ms (measured by
the benchmark's load). A deployment's own work is small (polls, a few queries, log lines;
the build runs in dockerd), so putting it ahead costs the apps little. Linux keeps the nice
value per thread: other tasks of the worker are not affected, and threads the deployment
starts (heartbeat, log publisher) inherit it, which is right, they are part of it. Without
the privilege to raise priority (CAP_SYS_NICE, e.g. not root) the deployment runs unchanged.

What the deployment runs on the tenant's behalf does not share that priority: a program it
starts (git fetching and archiving the tenant's repository) goes back to the priority the thread
had before (`as_before`), and builds and app containers run under dockerd, at its priority.
"""
import os
import threading
from contextlib import contextmanager
from typing import Iterator

RAISED_NICE = -10
_normal = threading.local()  # the thread's priority before raised(), while raised


@contextmanager
def raised() -> Iterator[bool]:
    """Run the block at a higher scheduling priority; yields whether that was allowed."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, RAISED_NICE)
    except PermissionError:
        yield False
        return
    _normal.nice = before
    try:
        yield True
    finally:
        del _normal.nice
        os.setpriority(os.PRIO_PROCESS, 0, before)  # lowering priority needs no privilege


def as_before(command: list[str]) -> list[str]:
    """The command run at the thread's priority from before raised(): through `nice`, an exec
    of a few hundred microseconds. Not by a function the child runs before its exec
    (subprocess's preexec_fn): that makes subprocess fork the whole worker (about 10 ms at
    200 MiB, more on a busy host) where it otherwise uses vfork (about 1 ms)."""
    normal = getattr(_normal, "nice", None)
    if normal is None:
        return command
    return ["nice", "-n", str(normal - os.getpriority(os.PRIO_PROCESS, 0)), *command]
