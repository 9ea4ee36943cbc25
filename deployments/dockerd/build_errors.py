"""How getting an image can fail: a build (builds.py), or a pull bounded like one (images.py)."""


class BuildFailed(Exception):
    """The Dockerfile did not build (or the image was not pulled); the message says why."""


class BuildStopped(Exception):
    """The build (or pull) was stopped on request (should_stop returned True)."""
