"""Many hosts, one broker. Each host runs an agent: a Celery worker on its own queue, with its own
Docker and HAProxy, that connects out to the panel's Redis with a credential of its own.

keys.py         where a host's messages, results and heartbeats live in Redis, and its ACL rules
credentials.py  a host's Redis user: created, revoked, re-applied; refused logins audited
signing.py      the panel's signing key: work an agent runs must carry the panel's signature
broker.py       the Celery apps: the panel's, one per host, and the agent's own
agent.py        what runs on a host: its tasks and its heartbeat
facts.py        what a heartbeat says (the agent writes it, the panel checks it)
images.py       the pre-pull: an image by digest on every host that will run it
heartbeats.py   the panel's side: heartbeats read, hosts marked healthy, suspect or down
"""
