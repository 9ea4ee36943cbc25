"""Builds and removals of their layers kept apart on one Docker daemon.

The classic builder (what dockerd 20.10 runs for API builds) takes its cache from the image
store: at each step it picks an image an earlier build made by the same step on the same parent,
then builds the next step on it. Nothing holds that image for the build. Removing an image also
removes its untagged parents (the layers its build left: that cache), so a removal can take the
very layer a running build has just picked, and the build fails with
`unable to find image "sha256:..."`. Apps built from one repository share those layers, and so do
installations on one daemon (test processes side by side).

So a build holds this lock shared for as long as it runs, and a removal takes untagged parents
with it only while it holds the lock exclusively (image_removal.py). Installations that share a
Docker daemon share the file: SWITCHYARD_BUILD_LOCK_FILE."""
import fcntl
import time
from contextlib import contextmanager
from typing import Iterator

from django.conf import settings

POLL_SECONDS = 0.1


@contextmanager
def building() -> Iterator[None]:
    """Held for a whole build; any number of builds hold it at once."""
    with open(settings.SWITCHYARD["BUILD_LOCK_FILE"], "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # waits only while a removal holds it: seconds at most
        yield  # closing the file lets go of the lock


@contextmanager
def no_build_running(wait: float = 0) -> Iterator[bool]:
    """Yields True once no build runs on the daemon (waiting up to `wait` seconds) and keeps any
    from starting until the block ends; False, holding nothing, if builds ran all that time."""
    with open(settings.SWITCHYARD["BUILD_LOCK_FILE"], "a") as lock:
        deadline = time.monotonic() + wait
        while not _try_exclusive(lock):
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(POLL_SECONDS)  # polled, never queued: a waiting removal holds no build up
        yield True


def _try_exclusive(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
