"""A deployment's hot path runs ahead of app traffic on a busy host, when it may.

Between "healthy" and "serving" (and between "broken" and "rolled back") the worker mostly
waits for the CPU: on 2 cores busy with the apps it deploys, each database write, lock and
HAProxy round trip of the switch took 1 to 70 ms instead of well under 1 ms (measured by
the benchmark's load). That stretch is a few milliseconds of work, so putting it ahead costs
the apps nothing they would notice. The rest of a deployment is not raised: at 100 apps a
deployment spends about a second of CPU outside the build (the routing table rendered at each
change, the runtime commands, the log), and at nice -10 that second came out of the apps that
were serving: their longest gap between two answers was 150 to 300 ms while 40 apps were created
and deployed (bench/many_apps.py). Linux keeps the nice value per thread: other tasks of the
worker are not affected, and threads started meanwhile inherit it. Without the privilege to raise
priority (CAP_SYS_NICE, e.g. not root) the deployment runs unchanged.

What the deployment runs on the tenant's behalf never shares that priority: a program it starts
(git fetching and archiving the tenant's repository) runs at the priority the thread had before
(`as_before`), and builds and app containers run under dockerd, at its priority.
"""
import os
import threading
from contextlib import contextmanager
from typing import Iterator

RAISED_NICE = -10
_normal = threading.local()  # the thread's priority before raise_now(), while raised


def raise_now() -> bool:
    """The calling thread raised until restore(); whether that was allowed. Raising a raised
    thread changes nothing (restore() still returns it to its priority from before the first)."""
    if getattr(_normal, "nice", None) is not None:
        return True
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, RAISED_NICE)
    except PermissionError:
        return False
    _normal.nice = before
    return True


def restore() -> None:
    """The thread back at its priority from before raise_now(); nothing if it is not raised."""
    normal = getattr(_normal, "nice", None)
    if normal is not None:
        del _normal.nice
        os.setpriority(os.PRIO_PROCESS, 0, normal)  # lowering priority needs no privilege


@contextmanager
def raised() -> Iterator[bool]:
    """Run the block at a higher scheduling priority; yields whether that was allowed."""
    allowed = raise_now()
    try:
        yield allowed
    finally:
        restore()


def as_before(command: list[str]) -> list[str]:
    """The command run at the thread's priority from before raised(): through `nice`, an exec
    of a few hundred microseconds. Not by a function the child runs before its exec
    (subprocess's preexec_fn): that makes subprocess fork the whole worker (about 10 ms at
    200 MiB, more on a busy host) where it otherwise uses vfork (about 1 ms)."""
    normal = getattr(_normal, "nice", None)
    if normal is None:
        return command
    return ["nice", "-n", str(normal - os.getpriority(os.PRIO_PROCESS, 0)), *command]
