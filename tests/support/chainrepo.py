"""A git repository of a Compose app whose web service has a chain, every image FROM scratch
with busybox (tests/stack/test_compose_chain.py):

- front (the web service): busybox httpd; /cgi-bin/page asks `backend` by service name and
  answers `front-RELEASE <backend's answer>`; /health is a static file;
- backend (no volume: the front's chain): /cgi-bin/answer says `backend-RELEASE <store's answer>`;
- store (named volume `data`): /cgi-bin/get says `migrations=…`, the lines in /data/migrations;
- migrate (one-shot, the backend waits for it to complete): appends RELEASE to /data/migrations,
  then exits with MIGRATE_EXIT.
"""
from tests.support.composerepo import ComposeRepo

FRONT_PAGE = """a=$(/bin/busybox timeout 5 /bin/busybox wget -q -O - http://backend:7001/cgi-bin/answer)
if [ -z "$a" ]; then echo 'Status: 502 Backend unreachable'; echo; echo no backend; exit 0; fi
echo 'Status: 200 OK'; echo; echo "front-RELEASE $a\""""
BACKEND_ANSWER = """s=$(/bin/busybox timeout 5 /bin/busybox wget -q -O - http://store:7000/cgi-bin/get)
if [ -z "$s" ]; then echo 'Status: 502 Store unreachable'; echo; echo no store; exit 0; fi
echo 'Status: 200 OK'; echo; echo "backend-RELEASE $s\""""
FRONT_HEALTH = """if [ $(( $(date +%s) - $(cat /tmp/started) )) -ge SECONDS ]; then
  echo 'Status: 500 Broken'; else echo 'Status: 200 OK'; fi
echo; echo health"""
STORE_GET = """echo 'Status: 200 OK'; echo
echo "migrations=$(/bin/busybox tr '\\n' ',' < /data/migrations 2>/dev/null)\""""

COMPOSE = """services:
  front:
    build: {{context: ., dockerfile: front.Dockerfile}}
    deploy: {{replicas: 2}}
    depends_on: [backend]
  backend:
    build: {{context: ., dockerfile: backend.Dockerfile}}
    environment: [RELEASE={release}]
    depends_on:
      store: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
    stop_grace_period: 1s
  store:
    build: {{context: ., dockerfile: store.Dockerfile}}
    volumes: [data:/data]
    healthcheck:
      test: [CMD, /bin/busybox, wget, -q, -O, /dev/null, "http://localhost:7000/cgi-bin/get"]
      interval: 1s
      retries: 30
  migrate:
    build: {{context: ., dockerfile: backend.Dockerfile}}
    volumes: [data:/data]
    command: [/bin/busybox, sh, -c, "echo migrating to {release}; echo {release} >> /data/migrations; exit {exit_code}"]
volumes:
  data: {{}}
"""


class ChainRepo(ComposeRepo):
    def commit_release(self, release: str, migrate_exit: int = 0, health_breaks_after: int = 10**6) -> str:
        """/cgi-bin/health answers 500 from `health_breaks_after` seconds after a front container started."""
        self._tree("front", {"page": FRONT_PAGE.replace("RELEASE", release),
                             "health": FRONT_HEALTH.replace("SECONDS", str(health_breaks_after))}, health=True)
        self._tree("backend", {"answer": BACKEND_ANSWER.replace("RELEASE", release)}, health=False)
        self._tree("store", {"get": STORE_GET}, health=False)
        self._serving("front.Dockerfile", "COPY front /www\n", 8000)
        self._serving("backend.Dockerfile", "COPY backend /www\n", 7001)
        self._serving("store.Dockerfile", "COPY store /www\n", 7000, make_data=True)
        (self.path / "compose.yaml").write_text(COMPOSE.format(release=release, exit_code=migrate_exit))
        return self._commit(release)

    def _serving(self, dockerfile: str, copy: str, port: int, make_data: bool = False) -> None:
        """No RUN step, so every layer may come from the build cache (see AppRepo._uncached)."""
        prepare = "mkdir -p /data /tmp; date +%s > /tmp/started; " if make_data else "mkdir -p /tmp; date +%s > /tmp/started; "
        cmd = f'["/bin/busybox", "sh", "-c", "{prepare}exec /bin/busybox httpd -f -p {port} -h /www"]'
        (self.path / dockerfile).write_text(f"FROM scratch\nCOPY busybox /bin/busybox\n{copy}CMD {cmd}\n")
