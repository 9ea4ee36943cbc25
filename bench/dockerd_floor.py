"""What dockerd alone takes to start a batch of release containers at once: the floor under
"N apps redeployed at once". Each container is started exactly as a deployment's start phase
starts one (containers.start_release_container: the app's own network, its limits, docker-init),
with the app's live image, but with none of Switchyard around it: no build, no verify, no switch,
no drain. So no deployment of those apps can start its container faster than this, whatever the
panel does; on 2 cores dockerd serialises much of a container's start (its network namespace,
veth pair and firewall rules), and that is what this shows."""
import statistics
import threading
import time
from dataclasses import dataclass

from deployments.dockerd import containers
from deployments.dockerd.values import Container
from deployments.models import App, Deployment

ALONE_SAMPLES = 3
STOP_TIMEOUT = 10  # the releases die at once on SIGTERM; this is only the ceiling


@dataclass(frozen=True)
class Floor:
    count: int
    at_once_seconds: float  # the first start asked → the last container running
    alone_seconds: float  # one container alone, median


def measure(apps: list[App]) -> Floor:
    """Start one container per app at once, then one alone; every container is removed after."""
    images = {app.name: _live_image(app) for app in apps}
    started: list[Container] = []
    try:
        at_once = _timed(lambda: _start_all(images, started))
        alone = []
        for sample in range(ALONE_SAMPLES):
            name, image = next(iter(images.items()))
            alone.append(_timed(lambda: started.append(_start(name, f"alone{sample}", image))))
    finally:
        _remove_all(started)
    return Floor(len(apps), at_once, statistics.median(alone))


def _live_image(app: App) -> str:
    return Deployment.objects.filter(app=app, state=Deployment.State.SUCCEEDED).latest("id").image


def _start(app_name: str, label: str, image: str) -> Container:
    return containers.start_release_container(app_name, f"floor-{label}", 0, image, 8000, {},
                                              containers.ContainerLimits.defaults())


def _start_all(images: dict[str, str], started: list) -> None:
    errors: list[BaseException] = []

    def start(name: str, image: str) -> None:
        try:
            started.append(_start(name, "batch", image))
        except BaseException as error:  # reported below, after every thread ended
            errors.append(error)

    threads = [threading.Thread(target=start, args=item) for item in images.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _remove_all(started: list[Container]) -> None:
    threads = [threading.Thread(target=containers.stop_and_remove, args=(c.id, STOP_TIMEOUT)) for c in started]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _timed(action) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began
