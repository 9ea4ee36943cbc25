"""A git repository of a Compose app made for a test, every image FROM scratch with busybox:

- store: busybox httpd on port 7000 keeping a counter in the named volume `counter`
  (/cgi-bin/incr?WHO adds one and remembers WHO; /cgi-bin/get says `count=N writer=WHO`);
- web (2 replicas): /cgi-bin/page answers `RELEASE count=N writer=WHO`, read from the store by
  its service name; /health is a static file;
- worker: adds one to the counter every 0.2 s as `worker-RELEASE`.
The web page retries the store for up to 5 s, on an error or an empty answer: while a changed
store is replaced it is away for a moment (and the old one, stopping, can cut an answer short),
as a real app's database client would retry.
"""
import shutil

from tests.support.apprepo import AppRepo

STORE_INCR = """n=$(( $(cat /data/counter 2>/dev/null || echo 0) + 1 ))
echo $n > /data/counter.new && mv /data/counter.new /data/counter
echo "$QUERY_STRING" > /data/writer
echo 'Status: 200 OK'; echo; echo $n"""
STORE_GET = """echo 'Status: 200 OK'; echo
echo "count=$(cat /data/counter 2>/dev/null || echo 0) writer=$(cat /data/writer 2>/dev/null)\""""
WEB_PAGE = """i=0
while [ $i -lt 50 ]; do
  s=$(/bin/busybox timeout 2 /bin/busybox wget -q -O - http://store:7000/cgi-bin/get) && [ -n "$s" ] && break
  i=$((i + 1)); /bin/busybox sleep 0.1
done
if [ -z "$s" ]; then echo 'Status: 502 Store unreachable'; echo; echo no store; exit 0; fi
echo 'Status: 200 OK'; echo; echo "RELEASE $s\""""
WORKER = ('["/bin/busybox", "sh", "-c", "while true; do /bin/busybox timeout 2 /bin/busybox wget -q -O /dev/null '
          '\\"http://store:7000/cgi-bin/incr?worker-$RELEASE\\"; /bin/busybox sleep 0.2; done"]')

COMPOSE = """services:
  web:
    build: {{context: ., dockerfile: web.Dockerfile}}
    deploy: {{replicas: 2}}
    init: true
    depends_on: {{store: {{condition: service_healthy}}}}
    healthcheck:
      test: [CMD, /bin/busybox, wget, -q, -O, /dev/null, "http://localhost:8000/health"]
      interval: 1s
      timeout: 2s
      retries: 3
  store:
    build: {{context: ., dockerfile: store.Dockerfile}}
    volumes: [counter:/data]
    environment: [STORE_FORMAT={store_format}]
    healthcheck:
      test: [CMD, /bin/busybox, wget, -q, -O, /dev/null, "http://localhost:7000/cgi-bin/get"]
      interval: 1s
      timeout: 2s
      retries: 30
    stop_grace_period: 2s
  worker:
    build: {{context: ., dockerfile: worker.Dockerfile}}
    environment: [RELEASE={release}]
    init: true
    depends_on: {{store: {{condition: service_healthy}}}}
    stop_grace_period: 1s
volumes:
  counter: {{}}
"""


WEB_HEALTH_BREAKS = """if [ $(( $(date +%s) - $(cat /tmp/started) )) -ge SECONDS ]; then
  echo 'Status: 500 Broken'; else echo 'Status: 200 OK'; fi
echo; echo health"""
WEB = ('["/bin/busybox", "sh", "-c", "mkdir -p /tmp; date +%s > /tmp/started; '
       'exec /bin/busybox httpd -f -p 8000 -h /www"]')
WORKER_CRASHES = '["/bin/busybox", "sh", "-c", "echo no queue configured >&2; exit 3"]'


class ComposeRepo(AppRepo):
    def commit_release(self, release: str, store_format: int = 1, web_health: bool = True,
                       health_breaks_after: int = 10**6, worker_crashes: bool = False) -> str:
        """Release `release` of all three services; a new store_format changes the store's definition.
        /cgi-bin/health answers 500 from `health_breaks_after` seconds after the web container started."""
        self._tree("store", {"get": STORE_GET, "incr": STORE_INCR}, health=True)
        self._tree("www", {"page": WEB_PAGE.replace("RELEASE", release),
                           "health": WEB_HEALTH_BREAKS.replace("SECONDS", str(health_breaks_after))}, health=web_health)
        self._write("store.Dockerfile", "COPY store /store\n",
                    '["/bin/busybox", "sh", "-c", "mkdir -p /data; exec /bin/busybox httpd -f -p 7000 -h /store"]')
        self._write("web.Dockerfile", "COPY www /www\n", WEB)
        self._write("worker.Dockerfile", "", WORKER_CRASHES if worker_crashes else WORKER)
        (self.path / "compose.yaml").write_text(COMPOSE.format(release=release, store_format=store_format))
        return self._commit(release)

    def _tree(self, name: str, scripts: dict[str, str], health: bool) -> None:
        root = self.path / name
        shutil.rmtree(root, ignore_errors=True)
        (root / "cgi-bin").mkdir(parents=True)
        if health:
            (root / "health").write_text("ok")
        for script, body in scripts.items():
            path = root / "cgi-bin" / script
            path.write_text(f"#!/bin/busybox sh\n{body}\n")
            path.chmod(0o755)

    def _write(self, dockerfile: str, copy: str, cmd: str) -> None:
        """No RUN step, so every layer may come from the build cache (see AppRepo._uncached)."""
        (self.path / dockerfile).write_text(f"FROM scratch\nCOPY busybox /bin/busybox\n{copy}CMD {cmd}\n")
