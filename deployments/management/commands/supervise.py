"""`manage.py supervise`: every process of the Procfile under supervisord, in the foreground, as
`make run` runs them. A process that exits (a crash, the out-of-memory killer) is started again
and the others go on; Ctrl-C (or SIGTERM) stops them all.

The Procfile stays the one list of processes; this renders it as supervisord's config (in the
data dir) and hands over to supervisord (the `supervisor` package). `supervisorctl -c
<data dir>/supervisord.conf status` shows them.
"""
import os
import re
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


def render(processes: dict[str, str], directory: Path, root: Path = ROOT) -> str:
    """supervisord's config: each process through `sh -c 'exec …'` (the Procfile's ${VAR:-default}
    are shell expansions), in its own process group, its output on supervisord's. `root`: where
    the processes run (the checkout)."""
    sections = [
        "[supervisord]", "nodaemon=true", f"logfile={_value(directory / 'supervisord.log')}",
        f"pidfile={_value(directory / 'supervisord.pid')}", "",
        "[unix_http_server]", f"file={_value(directory / 'supervisor.sock')}", "chmod=0700", "",
        "[supervisorctl]", f"serverurl=unix://{_value(directory / 'supervisor.sock')}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
    ]
    for name, command in processes.items():
        sections += [
            f"[program:{name}]", f"command={_command(['/bin/sh', '-c', f'exec {command}'])}",
            f"directory={_value(root)}", "autorestart=true",
            f"startsecs={START_SECONDS}", f"startretries={START_RETRIES}", "stopsignal=TERM",
            f"stopwaitsecs={STOP_SECONDS}", "stopasgroup=true", "killasgroup=true", "redirect_stderr=true",
            "stdout_logfile=/dev/stdout", "stdout_logfile_maxbytes=0", "",
        ]
    return "\n".join(sections)


# supervisord reads its config with ConfigParser: `;` or `#` after whitespace starts a comment that
# cuts the value, and `%` starts an expansion (%(here)s, %(ENV_X)s), so a literal one is `%%`.
INLINE_COMMENT = re.compile(r"\s[;#]")


def _value(path: Path) -> str:
    """A path as a config value; one that a comment would cut cannot be written at all."""
    text = str(path)
    if INLINE_COMMENT.search(text) or "\n" in text:
        raise CommandError(f"{text!r}: supervisord's config cannot hold a path with a space before ';' or '#' "
                           "(or a line break); move it, or set SWITCHYARD_DATA_DIR to another directory")
    return text.replace("%", "%%")


def _command(argv: list[str]) -> str:
    """argv as `command=`, which supervisord splits with shlex: every `;` and `#` stands outside
    the quotes, escaped with a backslash, so none follows whitespace (`'a '\\;' b'` is `a ; b`)."""
    words = []
    for arg in argv:
        pieces = [piece for piece in re.split(r"([;#])", arg) if piece] or [""]
        words.append("".join("\\" + piece if piece in (";", "#") else shlex.quote(piece) for piece in pieces))
    return " ".join(words).replace("%", "%%")


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
