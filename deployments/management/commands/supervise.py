"""`manage.py supervise`: every process of the Procfile under supervisord, in the foreground, as
`make run` runs them. A process that exits (a crash, the out-of-memory killer) is started again
and the others go on; Ctrl-C (or SIGTERM) stops them all.

The Procfile stays the one list of processes; this renders it as supervisord's config (in the
data dir) and hands over to supervisord (the `supervisor` package). `supervisorctl -c
<data dir>/supervisord.conf status` shows them.
"""
import os
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(__file__).resolve().parents[3]
PROCFILE = ROOT / "Procfile"
# A process that exits within START_SECONDS of its start counts as not started; supervisord
# tries again with a growing pause (1 s, 2 s, ...), then gives up on it after START_RETRIES.
START_SECONDS = 1
START_RETRIES = 100
# On Ctrl-C, a process still running after this long is killed (a worker mid-deploy: reconcile
# ends that deployment at the next start).
STOP_SECONDS = 20


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """name → command line, in the Procfile's order."""
    processes = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def render(processes: dict[str, str], directory: Path) -> str:
    """supervisord's config: each process through `sh -c 'exec …'` (the Procfile's ${VAR:-default}
    are shell expansions), in its own process group, its output on supervisord's."""
    sections = [
        "[supervisord]", "nodaemon=true", f"logfile={directory / 'supervisord.log'}",
        f"pidfile={directory / 'supervisord.pid'}", "",
        "[unix_http_server]", f"file={directory / 'supervisor.sock'}", "chmod=0700", "",
        "[supervisorctl]", f"serverurl=unix://{directory / 'supervisor.sock'}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
    ]
    for name, command in processes.items():
        line = shlex.join(["/bin/sh", "-c", f"exec {command}"]).replace("%", "%%")  # supervisord interpolates %
        sections += [
            f"[program:{name}]", f"command={line}", f"directory={ROOT}", "autorestart=true",
            f"startsecs={START_SECONDS}", f"startretries={START_RETRIES}", "stopsignal=TERM",
            f"stopwaitsecs={STOP_SECONDS}", "stopasgroup=true", "killasgroup=true", "redirect_stderr=true",
            "stdout_logfile=/dev/stdout", "stdout_logfile_maxbytes=0", "",
        ]
    return "\n".join(sections)


class Command(BaseCommand):
    help = "Run the Procfile's processes under supervisord: one that exits is restarted; Ctrl-C stops all."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--only", default="", help="comma-separated Procfile names (default: all of them)")

    def handle(self, *args, only: str, **options) -> None:
        processes = procfile()
        wanted = [name.strip() for name in only.split(",") if name.strip()] or list(processes)
        unknown = sorted(set(wanted) - set(processes))
        if unknown:
            raise CommandError(f"not in the Procfile: {', '.join(unknown)}; it has {', '.join(processes)}")
        directory = Path(settings.DATA_DIR)
        config = directory / "supervisord.conf"
        config.write_text(render({name: processes[name] for name in wanted}, directory))
        supervisord = str(Path(sys.executable).parent / "supervisord")
        sys.stdout.flush()
        os.execv(supervisord, [supervisord, "-c", str(config)])
