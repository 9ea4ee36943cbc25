"""GET /metrics: Switchyard's numbers in Prometheus' text format (prometheus_client).

Every figure is read at scrape time from where it is kept, not counted in a process: the
deployments from the database (the web process, the workers and a restarted worker all agree,
and nothing is lost to a restart), each app's live requests and 5xx from HAProxy's read-only
stats page. Protected: a superuser's API token as `Authorization: Bearer`, or a client address in
SWITCHYARD_METRICS_ALLOWED_IPS.
"""
import ipaddress
from datetime import datetime

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from deployments.haproxy import runtime_api, stats
from deployments.models import ApiToken, App, Deployment
from deployments.traffic import target
from deployments.traffic.table import COLOURS, backend_name

DURATION_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
PHASE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
SWITCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
FINISHED_SCANNED = 10_000  # the newest finished deployments the histograms are made of


class SwitchyardCollector:
    def collect(self):
        yield self._deployments_by_state()
        finished = list(Deployment.objects.filter(state__in=Deployment.FINAL_STATES, started_at__isnull=False)
                        .order_by("-id").values("app__name", "state", "started_at", "finished_at", "phase_times",
                                                "switch_ms", "rollback_reason")[:FINISHED_SCANNED])
        yield _histogram("switchyard_deployment_duration_seconds", "Start-to-end time of finished deployments",
                         DURATION_BUCKETS, ["state"], finished, label_of=lambda row: (row["state"],),
                         value_of=lambda row: _seconds(row["started_at"], row["finished_at"]))
        phases = [(phase, times) for row in finished for phase, times in row["phase_times"].items()]
        yield _histogram("switchyard_deployment_phase_duration_seconds", "Time each phase took", PHASE_BUCKETS,
                         ["phase"], phases, label_of=lambda item: (item[0],),
                         value_of=lambda item: _phase_seconds(item[1]))
        yield _histogram("switchyard_switch_latency_seconds",
                         "From HAProxy's UP (or a canary's verdict) to the map switch", SWITCH_BUCKETS, [], finished,
                         label_of=lambda row: (), value_of=lambda row: row["switch_ms"] and row["switch_ms"] / 1000)
        yield self._rollbacks()
        yield from _live_traffic()

    @staticmethod
    def _deployments_by_state() -> CounterMetricFamily:
        family = CounterMetricFamily("switchyard_deployments", "Finished deployments by app and final state",
                                     labels=["app", "state"])
        counts = (Deployment.objects.filter(state__in=Deployment.FINAL_STATES)
                  .values_list("app__name", "state").annotate(n=Count("id")).order_by())
        for app, state, n in counts:
            family.add_metric([app, state], n)
        return family

    @staticmethod
    def _rollbacks() -> CounterMetricFamily:
        family = CounterMetricFamily("switchyard_rollbacks", "Deployments rolled back, by app and what caught them",
                                     labels=["app", "reason"])
        counts = (Deployment.objects.filter(state=Deployment.State.ROLLED_BACK)
                  .values_list("app__name", "rollback_reason").annotate(n=Count("id")).order_by())
        for app, reason, n in counts:
            family.add_metric([app, reason or "unknown"], n)
        return family


def _histogram(name, documentation, buckets, labels, rows, label_of, value_of) -> HistogramMetricFamily:
    """A histogram family from rows: label_of(row) picks its series, value_of(row) its value
    (None: left out)."""
    series: dict[tuple, list[float]] = {}
    for row in rows:
        value = value_of(row)
        if value is not None:
            series.setdefault(label_of(row), []).append(value)
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, values in sorted(series.items()):
        cumulative = [(floatToGoString(bound), sum(v <= bound for v in values)) for bound in buckets]
        family.add_metric(list(label_values), cumulative + [("+Inf", len(values))], sum_value=sum(values))
    return family


def _live_traffic():
    """Each app's answers over both its backends, as HAProxy counted them since it started."""
    requests = CounterMetricFamily("switchyard_app_requests", "Requests HAProxy answered for the app", labels=["app"])
    errors = CounterMetricFamily("switchyard_app_responses_5xx", "5xx answers among them", labels=["app"])
    up = GaugeMetricFamily("switchyard_haproxy_up", "1 if HAProxy's stats page answered")
    try:
        answered = stats.by_backend(stats.page_servers(target.paths().stats_socket))
    except runtime_api.HAProxyUnavailable:
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    for app in App.objects.order_by("name").values_list("name", flat=True):
        total = stats.total(answered.get(backend_name(app, colour), stats.Responses()) for colour in COLOURS)
        requests.add_metric([app], total.total)
        errors.add_metric([app], total.errors)
    yield from (up, requests, errors)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _phase_seconds(times: dict) -> float | None:
    if "start" not in times or "end" not in times:
        return None
    return _seconds(datetime.fromisoformat(times["start"]), datetime.fromisoformat(times["end"]))


def _allowed(request: HttpRequest) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer "):
        user = ApiToken.user_for(header[len("Bearer "):].strip())
        return bool(user and user.is_superuser)
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.SWITCHYARD["METRICS_ALLOWED_IPS"])


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse("A superuser's API token (Authorization: Bearer TOKEN) or an address in "
                                "SWITCHYARD_METRICS_ALLOWED_IPS is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchyardCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
