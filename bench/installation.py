"""The installation a benchmark measures: isolated (the tests' settings: its own data dir, ports,
Redis and instance name), with the timings a production installation ships with, not the faster
ones the tests use (HAProxy's check every 300 ms instead of 1 s paces every verify)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def configure(**variables: str) -> None:
    """Before django.setup(): the settings module, the shipped check interval, and `variables`."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.settings"
    os.environ["SWITCHYARD_HAPROXY_CHECK_INTERVAL_MS"] = "1000"  # the default of panel/settings/switchyard.py
    os.environ.update(variables)
