"""A stream from dockerd read with a tick whenever it has been quiet for a while.

A build's RUN step or a release command can be silent for minutes after its first line. The
deployment log stores lines in batches when the next one comes (engine/logs.py), so without a
tick the last lines before a silence (`Step 3/5 : RUN ...`, "migrating...") would reach the panel
only when the step ends. The stream is read in a thread of its own, so the caller's thread, which
owns the database connection, stays the one that stores the lines."""
import queue
import threading
from typing import Iterable, Iterator

QUIET = object()  # what the iterator yields after `seconds` without an item
# Quiet this long, a caller stores what it holds: the deployment log's own batching interval.
QUIET_SECONDS = 0.25
_END = object()
HANDOVER_SECONDS = 0.1  # how often a reader waiting to hand over an item looks whether the caller left


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def with_quiet_ticks(items: Iterable, seconds: float, capacity: int = 1000) -> Iterator:
    """Each item of `items` in order, and QUIET after each `seconds` without one. An exception
    the stream raises (dockerd went away, the stream was shut from another thread) is raised
    here, in the caller's thread. A caller that stops early leaves the reader to end with the
    stream, which the caller closes."""
    handed: queue.Queue = queue.Queue(maxsize=capacity)  # bounded: a fast stream waits for the caller
    left = threading.Event()
    threading.Thread(target=_read, args=(items, handed, left), daemon=True, name="quiet-ticks").start()
    try:
        while True:
            try:
                item = handed.get(timeout=seconds)
            except queue.Empty:
                yield QUIET
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        left.set()


def _read(items: Iterable, handed: queue.Queue, left: threading.Event) -> None:
    try:
        for item in items:
            if not _hand_over(handed, item, left):
                return
    except BaseException as error:  # handed to the caller's thread, which raises it
        _hand_over(handed, _Failed(error), left)
        return
    _hand_over(handed, _END, left)


def _hand_over(handed: queue.Queue, item, left: threading.Event) -> bool:
    while not left.is_set():
        try:
            handed.put(item, timeout=HANDOVER_SECONDS)
            return True
        except queue.Full:
            continue
    return False
