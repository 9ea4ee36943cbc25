"""A running deployment's heartbeat: a thread that touches `heartbeat_at` every
SWITCHYARD_HEARTBEAT_INTERVAL seconds while the deployment runs. Reconcile ends deployments whose
heartbeat stopped for SWITCHYARD_HEARTBEAT_TIMEOUT seconds (their worker died)."""
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from deployments.models import Deployment


class Heartbeat:
    """Touches heartbeat_at while the deployment runs; reconcile fails deployments whose
    heartbeat stopped (their worker died)."""

    def __init__(self, deployment_id: int) -> None:
        self.deployment_id = deployment_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.SWITCHYARD["HEARTBEAT_INTERVAL"]):
                close_old_connections()
                Deployment.objects.filter(pk=self.deployment_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()
