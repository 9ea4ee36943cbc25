"""The one way a test waits: ask again until the answer is truthy, or fail saying what did not happen."""
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str | Callable[[], str], timeout: float, interval: float = 0.05) -> T:
    """check()'s first truthy answer, asked every `interval` seconds; TimeoutError after `timeout`
    naming `what` (a callable gives the message at that moment, e.g. the state things were left in).
    An exception check() raises (an assertion that the awaited thing can no longer happen) ends it."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what() if callable(what) else what} within {timeout}s")
        time.sleep(interval)
    return answer
