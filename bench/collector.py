"""Keeps Python's garbage collector from pausing a benchmark's load clients.

A load keeps every answer it gets (hundreds of thousands of objects in a run). A full collection
scans them all while every client thread of the process waits, and that pause shows up as a gap
no proxy caused: a probe of the hard cases' reload scenario saw collections of 105 ms in the
benchmark's own process. Objects frozen (gc.freeze) are skipped by later collections, so the
answers are frozen as they pile up. Before each freeze the young generations are collected
(cheap), so short-lived cyclic garbage is not frozen with them; what is older and garbage stays
until the block ends, a bounded run's worth of memory. The longest pause the collector still
made is kept, for the report to show beside the gaps it measured."""
import gc
import threading
import time
from contextlib import contextmanager
from typing import Iterator

FREEZE_EVERY = 1.0  # seconds


class Pauses:
    """The collector's pauses in this process while watched, the longest kept (seconds)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began: float | None = None  # None: no collection seen starting (one may be under way)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            self.longest = max(self.longest, time.perf_counter() - self._began)
            self._began = None


@contextmanager
def answers_frozen() -> Iterator[Pauses]:
    """Freeze what this process holds every FREEZE_EVERY seconds until the block ends; yields
    the pauses the collector made meanwhile."""
    pauses, done = Pauses(), threading.Event()
    gc.callbacks.append(pauses)

    def freeze() -> None:
        while not done.wait(FREEZE_EVERY):
            gc.collect(1)
            gc.freeze()

    freezer = threading.Thread(target=freeze, name="gc-freeze", daemon=True)
    freezer.start()
    try:
        yield pauses
    finally:
        done.set()
        freezer.join()
        gc.callbacks.remove(pauses)
        gc.unfreeze()
