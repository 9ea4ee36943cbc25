"""HAProxy's counters as typed values: the only parser of `show stat` (admin socket) and of the
read-only stats page's CSV (the same columns). Callers get Responses and ServerHealth, never rows."""
import csv
import io
from dataclasses import dataclass
from typing import Iterable
from pathlib import Path

from deployments.haproxy import runtime_api


@dataclass(frozen=True)
class Responses:
    """Answers HAProxy counted (since it started: a reload restarts the counters)."""
    total: int = 0
    errors: int = 0  # of which 5xx

    def __add__(self, other: "Responses") -> "Responses":
        return Responses(self.total + other.total, self.errors + other.errors)

    def since(self, baseline: "Responses") -> "Responses":
        """What was answered after `baseline` was read; all of it if HAProxy reloaded meanwhile."""
        if self.total < baseline.total:
            return self
        return Responses(self.total - baseline.total, self.errors - baseline.errors)

    @property
    def error_percent(self) -> float:
        return self.errors * 100 / self.total if self.total else 0.0


@dataclass(frozen=True)
class ServerHealth:
    """One server slot as HAProxy sees it."""
    slot: str  # s1, s2, ... (b: backups, c: a canary's)
    status: str  # HAProxy's: "UP", "UP 1/2" (rising), "DOWN", "MAINT", ...
    check: str  # the last check's result: "L7OK", "L4CON", ...
    detail: str  # HAProxy's words on that check
    answered: Responses
    backend: str = ""
    downs: int = 0  # how often HAProxy's check took it from UP to DOWN (chkdown), since HAProxy started

    @property
    def checked_up(self) -> bool:
        """UP after a passing check of its own: leaving maintenance shows "UP 1/2" and the
        slot's old check result until HAProxy itself has seen this server healthy."""
        return self.status == "UP" and self.check.startswith("L7OK")

    @property
    def down(self) -> bool:
        return self.status.startswith("DOWN")

    def describe(self) -> str:
        return f"{self.slot} {self.status} {self.check} {self.detail}".strip()


def total(answers: Iterable[Responses]) -> Responses:
    return sum(answers, Responses())


def answered(servers_: Iterable[ServerHealth]) -> Responses:
    """What these servers answered together."""
    return total(server.answered for server in servers_)


def servers(admin_socket: Path, backend: str) -> list[ServerHealth]:
    """A backend's servers in slot order. HAProxy filters, so the answer does not grow with the
    number of apps (the deploy polls it every 20 ms)."""
    return parse_servers(runtime_api.send(admin_socket, f"show stat {backend} 4 -1"))


def backend_totals(admin_socket: Path, backend: str) -> Responses | None:
    """The whole backend's answers, HAProxy's own 503s included; None if it has no such backend."""
    return parse_backends(runtime_api.send(admin_socket, f"show stat {backend} 2 -1")).get(backend)


def page_servers(stats_socket: Path, timeout: float = 2.0) -> list[ServerHealth]:
    """Every server of every backend, from the stats page: an interface that cannot change anything."""
    return parse_servers(runtime_api.stats_page_csv(stats_socket, timeout))


def page_up_servers(stats_socket: Path, timeout: float = 2.0) -> dict[str, set[str]]:
    """Per backend, its servers that are UP (or going down: still serving), from the stats page
    with `;up`, which leaves out those in maintenance or DOWN: the apps page's question, answered
    without reading every slot of every backend (some 3,000 rows at 100 apps, most of them idle)."""
    up: dict[str, set[str]] = {}
    for row in _rows(runtime_api.stats_page_csv(stats_socket, timeout, up_only=True)):
        if row.get("svname") not in (None, "FRONTEND", "BACKEND") and row.get("status", "").startswith("UP"):
            up.setdefault(row["pxname"], set()).add(row["svname"])
    return up


def by_backend(servers_: list[ServerHealth]) -> dict[str, Responses]:
    answered: dict[str, Responses] = {}
    for server in servers_:
        answered[server.backend] = answered.get(server.backend, Responses()) + server.answered
    return answered


def parse_servers(csv_text: str) -> list[ServerHealth]:
    return [ServerHealth(slot=row["svname"], status=row["status"], check=row.get("check_status") or "",
                         detail=row.get("check_desc") or "", answered=_responses(row), backend=row["pxname"],
                         downs=int(row.get("chkdown") or 0))
            for row in _rows(csv_text) if row.get("svname") not in ("FRONTEND", "BACKEND", None)]


def parse_backends(csv_text: str) -> dict[str, Responses]:
    return {row["pxname"]: _responses(row) for row in _rows(csv_text) if row.get("svname") == "BACKEND"}


# The columns read here, of the eighty-odd HAProxy writes: a row of each is made, not of all
# (the stats page at 100 apps has some 3,000 server rows, and the apps page reads it).
COLUMNS = frozenset({"pxname", "svname", "status", "check_status", "check_desc", "chkdown",
                     *(f"hrsp_{k}xx" for k in range(1, 6))})


def _rows(csv_text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(csv_text.lstrip("# ")))
    header = next(reader, [])
    wanted = [(name, index) for index, name in enumerate(header) if name in COLUMNS]
    return [{name: row[index] for name, index in wanted if index < len(row)} for row in reader if row]


def _responses(row: dict[str, str]) -> Responses:
    answered = sum(int(row.get(f"hrsp_{k}xx") or 0) for k in range(1, 6))
    return Responses(answered, int(row.get("hrsp_5xx") or 0))
