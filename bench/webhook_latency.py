"""Benchmark: how fast the webhook answers. It only records and enqueues (target: p95 < 50 ms).

Starts an isolated Switchyard like the test suite does (own data dir, Redis, free ports),
serves the panel with gunicorn + uvicorn workers as `make run` does, and sends signed GitHub
push deliveries one after another over a keep-alive connection: half to the app's branch
(recorded and queued, superseding the previous queued one) and half to another branch
(recorded and ignored). No Celery worker runs, so nothing is built: this measures the
webhook path only. Prints a markdown table and writes it into bench/RESULTS.md.
"""
import hashlib
import hmac
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.settings"  # an isolated installation on free ports

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench import figures  # noqa: E402
from bench.results import replace_section  # noqa: E402
from bench.services import free_port, redis_server, serve_panel  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_WEBHOOK_REQUESTS", "1000"))
SECRET = "bench-secret"
SHA = "b" * 40
REPOSITORY = "https://github.com/bench/app.git"


def delivery(branch: str) -> tuple[bytes, dict]:
    body = json.dumps({"ref": f"refs/heads/{branch}", "after": SHA, "pusher": {"name": "bench"},
                       "repository": {"full_name": "bench/app", "clone_url": REPOSITORY},  # the app's: it acts on it
                       "commits": [{"id": SHA}]}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
                  "X-Hub-Signature-256": signature, "Content-Type": "application/json"}


def measure(port: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"queued": [], "ignored": []}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for number in range(REQUESTS):
        branch = "main" if number % 2 == 0 else "feature"
        body, headers = delivery(branch)
        started = time.perf_counter()
        connection.request("POST", "/hooks/bench/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        expected = 202 if branch == "main" else 200
        assert response.status == expected, f"{response.status} for a push to {branch}"
        timings["queued" if branch == "main" else "ignored"].append(elapsed)
    timings["refused at once (the floor)"] = [_refused(connection) for _ in range(REQUESTS // 2)]
    connection.close()
    return timings


def _refused(connection: http.client.HTTPConnection) -> float:
    """A GET to the same endpoint, answered 405 before any work of the webhook's own (no query,
    no signature): what uvicorn, Django's ASGI handler and the middleware cost on their own."""
    started = time.perf_counter()
    connection.request("GET", "/hooks/bench/")
    response = connection.getresponse()
    response.read()
    assert response.status == 405, f"{response.status} for a GET to the webhook"
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def table(timings: dict[str, list[float]]) -> str:
    lines = ["| deliveries | count | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for kind, values in timings.items():
        lines.append(f"| {kind} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} "
                     f"| {percentile(values, 0.99):.1f} | {max(values):.1f} |")
    return "\n".join(lines)


def main() -> None:
    from django.contrib.auth import get_user_model

    from deployments.models import App

    call_command("migrate", verbosity=0)
    with redis_server():
        owner = get_user_model().objects.create_user("bench")
        App.objects.create(name="bench", repo_url=REPOSITORY, branch="main", owner=owner, webhook_secret=SECRET)
        with serve_panel(free_port()) as port:
            measure(port)  # warm-up round (imports, connections); discarded below
            timings = measure(port)
    result = table(timings)
    print(result)
    figures.record("webhook", queued=percentile(timings["queued"], 0.95), ignored=percentile(timings["ignored"], 0.95),
                   floor=percentile(timings["refused at once (the floor)"], 0.95))
    replace_section("webhook", f"## Webhook answer time\n\n{REQUESTS} signed GitHub push deliveries, one at a "
                    f"time over keep-alive, to the panel served as by `make run` (gunicorn, 2 uvicorn workers, "
                    f"SQLite). Queued: push to the app's branch (recorded, deployment queued, older queued one "
                    f"superseded). Ignored: push to another branch (recorded). Refused at once: a GET to the "
                    f"same endpoint, answered 405 before any of the webhook's own work: the floor that "
                    f"the server, Django and its middleware set on this machine.\n\n{result}\n")
    assert percentile(timings["queued"] + timings["ignored"], 0.95) < 50, "webhook p95 is over 50 ms"


if __name__ == "__main__":
    try:
        main()
    finally:
        import shutil

        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)
