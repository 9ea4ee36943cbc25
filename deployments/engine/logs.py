"""A deployment's log: each line is stored first, then published to its Channels group.

The channel layer may drop a message; the database may not. A page that reconnects asks
for the lines after the last sequence number it has. Lines are written in small batches
so a 100,000-line build log costs hundreds of inserts, not 100,000.
"""
import asyncio
import logging
import queue
import threading
import time

from channels.layers import get_channel_layer
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from deployments.masking import Masker
from deployments.models import LogLine

FLUSH_LINES = 200
FLUSH_SECONDS = 0.25
MAX_LINE = 4000
RESERVE_LINES = 100  # of MAX_LOG_LINES, kept for the engine's own lines once the output is cut

logger = logging.getLogger(__name__)


def group_name(deployment_id: int) -> str:
    return f"deployment-{deployment_id}"


def publish(deployment_id: int, message: dict) -> None:
    """Best effort and never in the deploy's way: handed to this process's publisher thread.
    A listener that misses a message catches up from the database."""
    _publisher().put((group_name(deployment_id), message))


_queue: queue.Queue | None = None
_queue_lock = threading.Lock()


def _publisher() -> queue.Queue:
    """One thread per process (started lazily, so after a Celery worker forks) sends messages in
    order on one event loop, which keeps its Redis connection: ~3 ms saved per message."""
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.Queue()
            threading.Thread(target=_send_forever, args=(_queue,), daemon=True, name="channels-publisher").start()
        return _queue


def _send_forever(messages: queue.Queue) -> None:
    loop = asyncio.new_event_loop()
    layer = get_channel_layer()
    while True:
        group, message = messages.get()
        try:
            loop.run_until_complete(layer.group_send(group, message))
        except Exception as error:
            logger.warning("could not publish to %s: %s", group, error)
        finally:
            messages.task_done()


def wait_until_published() -> None:
    """Until every message this process handed to its publisher so far is sent (or failed): for a
    test that must know its lines went out before a listener joins."""
    if _queue is not None:
        _queue.join()


class DeploymentLog:
    def __init__(self, deployment_id: int, secrets: list[str] | tuple[str, ...] = ()) -> None:
        self.deployment_id = deployment_id
        # Env var values never reach the log, even if an app prints its environment.
        self.mask = Masker(secrets)
        last = LogLine.objects.filter(deployment_id=deployment_id).aggregate(m=Max("seq"))["m"]
        self._next_seq = (last or 0) + 1
        self._pending: list[LogLine] = []
        self._last_flush = time.monotonic()
        self._held = False
        self._held_messages: list[dict] = []
        self._max_lines = settings.SWITCHYARD["MAX_LOG_LINES"]
        self._output_limit = self._max_lines - min(RESERVE_LINES, self._max_lines // 2)
        self._max_bytes = settings.SWITCHYARD["MAX_LOG_BYTES"]
        self._output_bytes = 0  # of output stored by this writer
        self._dropped = self._noted = 0  # lines of output cut, and how many of them a line reported

    def write(self, text: str) -> None:
        """A line of the engine's own (phases, outcome). Always stored: the code bounds how
        many there are (a few dozen a deployment), and they say how it ended."""
        self._note_dropped_output()
        text = self.mask(text)
        for line in text.splitlines() or [""]:
            self._append(line)
        self._flush_when_due()

    def output(self, text: str) -> None:
        """Output the app produces (its build, its release command), which nothing bounds: stored up
        to MAX_LOG_LINES minus a reserve left for the engine's lines and up to MAX_LOG_BYTES, then
        cut with one line saying so (and, before the engine's next line, how many were not stored)."""
        text = self.mask(text)
        for line in text.splitlines() or [""]:
            size = len(line[:MAX_LINE].encode(errors="replace"))
            if not self._dropped and self._next_seq <= self._output_limit and self._output_bytes + size <= self._max_bytes:
                self._output_bytes += size
                self._append(line)
                continue
            if not self._dropped:
                self._append(f"[log cut: output beyond {self._output_limit:,} lines is not stored "
                             f"(SWITCHYARD_MAX_LOG_LINES={self._max_lines})]" if self._next_seq > self._output_limit else
                             f"[log cut: output beyond {self._output_bytes:,} bytes is not stored "
                             f"(SWITCHYARD_MAX_LOG_BYTES={self._max_bytes})]")
            self._dropped += 1
        self._flush_when_due()

    def _note_dropped_output(self) -> None:
        if self._dropped > self._noted:
            self._append(f"[{self._dropped:,} lines of output were not stored]")
            self._noted = self._dropped

    def _append(self, line: str) -> None:
        self._pending.append(LogLine(deployment_id=self.deployment_id, seq=self._next_seq, text=line[:MAX_LINE]))
        self._next_seq += 1

    def _flush_when_due(self) -> None:
        if self._held:
            return
        if len(self._pending) >= FLUSH_LINES or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush_pending(self) -> None:
        """For output that has gone quiet (a RUN step or a release command at work): the lines held
        for the next batch are stored and shown now, not when the next line comes (unless held)."""
        if not self._held:
            self.flush()

    def send(self, message: dict) -> None:
        """Publish a message that is not a line (e.g. the deployment's state) to the same group."""
        if self._held:
            self._held_messages.append(message)
        else:
            publish(self.deployment_id, message)

    def hold(self) -> None:
        """Keep new lines and messages here until release() (lines also go on an explicit flush):
        for a stretch where neither a database write nor the publisher thread may delay what
        users wait on, like the switch."""
        self._held = True

    def release(self) -> None:
        self._held = False
        messages, self._held_messages = self._held_messages, []
        for message in messages:
            publish(self.deployment_id, message)
        self._held_messages: list[dict] = []

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        LogLine.objects.bulk_create(lines)
        publish(self.deployment_id, {
            "type": "log.lines",
            "lines": [{"seq": line.seq, "text": line.text, "time": line.created_at.isoformat()} for line in lines],
        })


def append(deployment_id: int, text: str) -> None:
    """Write and flush at once: for the odd line from outside a running pipeline."""
    log = DeploymentLog(deployment_id)
    log.write(text)
    log.flush()


PRUNED_NOTE = "[log deleted:"
# Lines per delete: one deployment's log may hold SWITCHYARD_MAX_LOG_LINES (50,000), so batches go
# by rows, not deployments. Short transactions (a deploy's log writes never wait long), and each
# statement's parameters stay below SQLite's limit on variables (999 before SQLite 3.32).
PRUNE_BATCH = 500


def prune(days: int | None = None) -> int:
    """Delete the logs of deployments that ended more than `days` (SWITCHYARD_LOG_RETENTION_DAYS)
    ago; each keeps one line (seq 1) saying so. The deployments themselves stay (history,
    metrics). Returns how many deployments' logs were deleted. In batches of PRUNE_BATCH lines:
    1. the next lines of old deployments that are not a note already;
    2. in one transaction: delete them, and give each deployment they were of its note (seq 1),
       unless it has one; lines of it still there go in the next batches."""
    days = settings.SWITCHYARD["LOG_RETENTION_DAYS"] if days is None else days
    if not days:
        return 0
    note = f"{PRUNED_NOTE} the deployment ended more than {days} days ago (SWITCHYARD_LOG_RETENTION_DAYS)]"
    old_lines = LogLine.objects.filter(deployment__finished_at__lt=timezone.now() - timedelta(days=days)).exclude(
        seq=1, text__startswith=PRUNED_NOTE).order_by("pk")
    pruned: set[int] = set()
    while batch := list(old_lines.values_list("pk", "deployment_id")[:PRUNE_BATCH]):
        deployment_ids = {deployment_id for _, deployment_id in batch}
        with transaction.atomic():
            LogLine.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            noted = set(LogLine.objects.filter(deployment_id__in=deployment_ids, seq=1).values_list(
                "deployment_id", flat=True))
            LogLine.objects.bulk_create(LogLine(deployment_id=pk, seq=1, text=note) for pk in deployment_ids - noted)
        pruned |= deployment_ids
    return len(pruned)
