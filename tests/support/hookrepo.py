"""A git repository of a Compose app with lifecycle hooks, every image FROM scratch with busybox
(tests/stack/test_compose_hooks.py):

- web (the web service, 2 replicas): busybox httpd; /cgi-bin/events answers the store's event
  list; /health is a static file, /cgi-bin/health answers 500 from `health_breaks_after` seconds
  after the container started. Its `post_start` and `pre_stop` hooks run /www/note as user 65534
  in /www/cgi-bin with GREETING=hi: it asks the store to record `HOOK,web,RELEASE,HOSTNAME,
  uid=…,cwd=…,GREETING,up=…` (up: what the container's own /health answered when the hook ran,
  "ok" while its server runs). It depends on `store` (healthy, `restart: true`) and on `debug`,
  a service only in the profile `debug` (not active), with `required: false`;
- store (named volume `events`): /cgi-bin/note appends its query string to /data/events,
  /cgi-bin/events answers that file. Its own hooks append `HOOK,store,STORE_RELEASE,HOSTNAME`
  there directly. A new `store_release` changes its definition: the store is replaced;
- debug: never deployed (its Dockerfile does not exist: building it would fail the deploy).
"""
from tests.support.composerepo import ComposeRepo

NOTE = """up=$(/bin/busybox timeout 2 /bin/busybox wget -q -O - http://127.0.0.1:8000/health 2>/dev/null)
/bin/busybox timeout 5 /bin/busybox wget -q -O /dev/null \\
  "http://store:7000/cgi-bin/note?$1,web,$RELEASE,$(/bin/busybox hostname),uid=$(/bin/busybox id -u),cwd=$(pwd),$GREETING,up=$up\""""
NOTE_SELF = 'echo "$1,store,$STORE_RELEASE,$(/bin/busybox hostname)" >> /data/events'
EVENTS = """e=$(/bin/busybox timeout 5 /bin/busybox wget -q -O - http://store:7000/cgi-bin/events)
echo 'Status: 200 OK'; echo; echo "$e\""""
HEALTH = """if [ $(( $(date +%s) - $(cat /tmp/started) )) -ge SECONDS ]; then
  echo 'Status: 500 Broken'; else echo 'Status: 200 OK'; fi
echo; echo health"""
STORE_NOTE = """echo "$QUERY_STRING" >> /data/events
echo 'Status: 200 OK'; echo; echo noted"""
STORE_EVENTS = """echo 'Status: 200 OK'; echo; cat /data/events 2>/dev/null"""

WEB_HOOK = "{command: [/www/note, HOOK], user: '65534', working_dir: /www/cgi-bin, environment: {GREETING: hi}}"
STORE_HOOK = "{command: [/bin/busybox, sh, /store/note-self, HOOK]}"

COMPOSE = """services:
  web:
    build: {context: ., dockerfile: web.Dockerfile}
    deploy: {replicas: 2}
    environment: [RELEASE=WEB_RELEASE]
    stop_grace_period: 5s
    depends_on:
      store: {condition: service_healthy, restart: true}
      debug: {condition: service_started, required: false}
    post_start: [WEB_POST_START]
    pre_stop: [WEB_PRE_STOP]
  store:
    build: {context: ., dockerfile: store.Dockerfile}
    volumes: [events:/data]
    environment: [STORE_RELEASE=THE_STORE_RELEASE]
    stop_grace_period: 2s
    healthcheck:
      test: [CMD, /bin/busybox, wget, -q, -O, /dev/null, "http://localhost:7000/cgi-bin/events"]
      interval: 1s
      retries: 30
    post_start: [STORE_POST_START]
    pre_stop: [STORE_PRE_STOP]
  debug:
    build: {context: ., dockerfile: debug.Dockerfile}
    profiles: [debug]
volumes:
  events: {}
""".replace("WEB_POST_START", WEB_HOOK.replace("HOOK", "post_start")).replace(
    "WEB_PRE_STOP", WEB_HOOK.replace("HOOK", "pre_stop")).replace(
    "STORE_POST_START", STORE_HOOK.replace("HOOK", "post_start")).replace(
    "STORE_PRE_STOP", STORE_HOOK.replace("HOOK", "pre_stop"))
WEB = ('["/bin/busybox", "sh", "-c", "mkdir -p /tmp; date +%s > /tmp/started; '
       'exec /bin/busybox httpd -f -p 8000 -h /www"]')
STORE = '["/bin/busybox", "sh", "-c", "mkdir -p /data; exec /bin/busybox httpd -f -p 7000 -h /store"]'


class HookRepo(ComposeRepo):
    def commit_release(self, release: str, store_release: str = "s1", health_breaks_after: int = 10**6) -> str:
        self._tree("www", {"events": EVENTS, "health": HEALTH.replace("SECONDS", str(health_breaks_after))},
                   health=True)
        self._script(self.path / "www" / "note", NOTE)
        self._tree("store", {"note": STORE_NOTE, "events": STORE_EVENTS}, health=False)
        self._script(self.path / "store" / "note-self", NOTE_SELF)
        self._write("web.Dockerfile", "COPY www /www\n", WEB)
        self._write("store.Dockerfile", "COPY store /store\n", STORE)
        compose = COMPOSE.replace("WEB_RELEASE", release).replace("THE_STORE_RELEASE", store_release)
        (self.path / "compose.yaml").write_text(compose)
        return self._commit(release)

    @staticmethod
    def _script(path, body: str) -> None:
        path.write_text(f"#!/bin/busybox sh\n{body}\n")
        path.chmod(0o755)
