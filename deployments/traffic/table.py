"""The routing table: per app its hosts, live colour, each colour's servers (in slot order: every
slot past them is in maintenance), backups, a canary's servers and weights, and its certificate;
the panel's route beside them. Plain frozen values and pure functions (no ORM, no I/O): the
HAProxy adapter renders and applies exactly this, and tests build it by hand."""
import hashlib
from dataclasses import dataclass, field

MAX_REPLICAS = 8  # HAProxy keeps this many server slots per backend, so scaling needs no reload
COLOURS = ("blue", "green")
MAX_WEIGHT = 256  # HAProxy's


@dataclass(frozen=True)
class Server:
    addr: str
    port: int


@dataclass(frozen=True)
class HealthCheck:
    path: str
    status: int
    host: str
    timeout: float


@dataclass(frozen=True)
class Backend:
    health: HealthCheck
    servers: tuple[Server, ...] = ()  # in slot order: s1, s2, ...
    backups: tuple[Server, ...] = ()  # b1, b2, ...: used only when every primary server is DOWN
    canaries: tuple[Server, ...] = ()  # c1, c2, ...: a new release taking canary_percent of the traffic
    canary_percent: int = 0

    def weights(self) -> tuple[int, int]:
        """(weight of each s slot, weight of each c slot): the c slots together get canary_percent."""
        return canary_weights(self.canary_percent, len(self.servers), len(self.canaries))


def canary_weights(percent: int, old_servers: int, new_servers: int) -> tuple[int, int]:
    """Server weights (each 1-256, HAProxy's range) giving the new servers `percent` of the
    requests between them and the old, as close as whole weights allow."""
    if not percent or not new_servers:
        return 1, 0
    if percent >= 100 or not old_servers:
        return 0, 1
    per_old, per_new = (100 - percent) / old_servers, percent / new_servers

    def share(weights: tuple[int, int]) -> float:
        return 100 * new_servers * weights[1] / (new_servers * weights[1] + old_servers * weights[0])

    # The heavier side's weight from 128 to 256, the other side's rounded to it: the closest share.
    candidates = []
    for heavy in range(MAX_WEIGHT // 2, MAX_WEIGHT + 1):
        light = max(1, round(heavy * min(per_old, per_new) / max(per_old, per_new)))
        candidates.append((heavy, light) if per_old >= per_new else (light, heavy))
    return min(candidates, key=lambda weights: abs(share(weights) - percent))


@dataclass(frozen=True)
class Tls:
    """An app's certificate as HAProxy serves it."""
    covered: tuple[str, ...]  # the app's hosts the certificate is valid for
    redirect: bool  # plain HTTP on those hosts redirects to HTTPS
    hsts: bool  # HTTPS answers on those hosts carry Strict-Transport-Security
    pem: str = field(default="", repr=False)  # certificate chain and key, as HAProxy loads them

    @property
    def verdict_key(self) -> str:
        """What HAProxy's verdict on this certificate is remembered by: SHA-256 of its PEM and its
        SNI filters (HAProxy may load a PEM on its own and refuse it with the filters: too many)."""
        return hashlib.sha256("\n".join([*self.covered, self.pem]).encode(errors="surrogatepass")).hexdigest()


@dataclass(frozen=True)
class PanelRoute:
    """The panel on its own domain (SWITCHYARD_PANEL_DOMAIN), served by the apps' HAProxy."""
    hostname: str
    server: Server  # where the panel listens (SWITCHYARD_PANEL_BIND)
    tls: Tls | None = None  # its certificate, once there is one


@dataclass(frozen=True)
class AppRoute:
    name: str
    hostnames: tuple[str, ...]
    live_colour: str
    backends: dict[str, Backend] = field(default_factory=dict)  # colour -> backend
    tls: Tls | None = None  # None: no certificate yet, HTTPS answers with the default one
    canary: bool = False  # its backends have canary slots, a sticky cookie and latency logging

    def backend(self, colour: str) -> str:
        return backend_name(self.name, colour)


def backend_name(app_name: str, colour: str) -> str:
    return f"app_{app_name}_{colour}"


def other_colour(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@dataclass(frozen=True)
class CheckTiming:
    """HAProxy's own check of each server: every `interval_ms`, UP after one good answer, DOWN
    after two bad ones (the pipeline's verify waits for UP, the watch's failover for DOWN)."""
    interval_ms: int = 1000
    # A server that is DOWN is checked this often (HAProxy's downinter): a slot a deployment has
    # armed (engine/phases/verify.py arm) is checked again within this of getting its container,
    # where the first check of a slot leaving maintenance waits up to a whole interval.
    down_interval_ms: int = 100

    def interval(self) -> str:
        """As HAProxy's time format: whole seconds as "1s" (what the config always said), else ms."""
        return _haproxy_time(self.interval_ms)

    def down_interval(self) -> str:
        return _haproxy_time(min(self.down_interval_ms, self.interval_ms))


def _haproxy_time(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@dataclass(frozen=True)
class RoutingTable:
    """Everything HAProxy routes: what one change computes and the adapter applies as a whole."""
    apps: tuple[AppRoute, ...] = ()
    panel: PanelRoute | None = None
    checks: CheckTiming = CheckTiming()

    def app(self, name: str) -> AppRoute | None:
        return next((route for route in self.apps if route.name == name), None)


@dataclass(frozen=True)
class Holder:
    """What a deployment that holds one colour of an app puts there (from its row)."""
    colour: str
    health: HealthCheck  # as it was verified: editing the health path never fails a live release
    servers: tuple[Server, ...]
    backups: tuple[Server, ...] = ()  # the release it replaced, while it serves as its backups
    canary_percent: int = 0  # >0: its servers are a canary in the other (live) colour's backend


def app_route(*, name: str, hostnames: tuple[str, ...], live_colour: str, holders: tuple[Holder, ...],
              health: HealthCheck, tls: Tls | None, canary_steps: bool) -> AppRoute:
    """An app's route from what holds its colours. A canary (a holder with a canary_percent)
    puts its servers into the other colour's backend, the live one, as c slots; a colour nobody
    holds is empty and checked with the app's current health check (the next deployment's)."""
    by_colour = {holder.colour: holder for holder in holders}
    canaries = {other_colour(holder.colour): holder for holder in holders if holder.canary_percent}
    backends = {}
    for colour in COLOURS:
        holder, canary = by_colour.get(colour), canaries.get(colour)
        backends[colour] = Backend(health=holder.health if holder else health,
                                   servers=holder.servers if holder else (), backups=holder.backups if holder else (),
                                   canaries=canary.servers if canary else (),
                                   canary_percent=canary.canary_percent if canary else 0)
    return AppRoute(name=name, hostnames=hostnames, live_colour=live_colour, backends=backends, tls=tls,
                    canary=bool(canary_steps or canaries))
