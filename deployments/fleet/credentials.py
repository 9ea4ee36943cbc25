"""A host's way into the broker: a Redis ACL user of its own (keys.acl_rules), set from the hash the
database keeps, so the credential itself is never stored, and the panel's certificate where its
agent reads it. Redis keeps ACL users in memory only: `apply_all` sets every host's again (the
control worker does with each heartbeat round, every 2 s, so a restarted Redis lets the hosts back
in), and a revoked host's user is switched off and its connections cut at once.

Redis also records every refusal (ACL LOG): `take_refusals` hands over the ones of a fleet user
(logins, and commands or keys beyond its rules), which heartbeats.py records as audit events, so a host that tries a wrong or revoked
credential is on record."""
from dataclasses import dataclass

import redis
from redis.lock import Lock

from deployments.engine.locks import redis_client
from deployments.fleet import keys, signing
from deployments.models import Host

# Redis's ACL LOG keeps the last 128 entries by default.
_LOG_ENTRIES = 128
# The scripts an agent runs (EVALSHA only: keys.AGENT_COMMANDS): kombu's mutex is a redis-py lock.
SCRIPTS = (Lock.LUA_RELEASE_SCRIPT,)


@dataclass(frozen=True)
class Refusal:
    host: str  # the fleet user's host part
    reason: str  # "auth" (a wrong or revoked credential), "command", "key" or "channel" (beyond its rules)
    what: str  # the command, key or channel refused (empty for a login)
    client: str  # Redis's "addr=... laddr=..." line of the client that tried last
    count: int  # Redis folds repeats of the same refusal into one entry


def anyone_may_enter() -> bool:
    """Whether Redis lets a client in as its default user (all rights) without a password. Hosts
    reach the broker over a network: such a broker would give any of them everything, whatever
    their own users allow, so no host is let in to it."""
    rules = _as_dict(redis_client().execute_command("ACL", "GETUSER", "default"))
    flags = rules.get("flags", "")
    return "on" in flags.split() and "nopass" in flags.split()


def apply(host: Host) -> None:
    """Set the host's ACL user from the database (on with its credential's hash, or off if
    revoked), and the panel's certificate where its agent reads it (at start)."""
    client = redis_client()
    if host.revoked_at is not None:
        revoke(host.name)
        return
    client.execute_command("ACL", "SETUSER", keys.acl_user(host.name), *keys.acl_rules(host.name, host.credential_hash))
    client.set(keys.panel_certificate_key(host.name), signing.panel_key().certificate_pem)


def revoke(host_name: str) -> None:
    """The user off and every connection it holds closed: a revoked agent gets nothing more."""
    client = redis_client()
    client.execute_command("ACL", "SETUSER", keys.acl_user(host_name), "reset", "off")
    try:
        client.execute_command("CLIENT", "KILL", "USER", keys.acl_user(host_name))
    except redis.ResponseError:  # no client connected as that user
        pass


def remove(host_name: str) -> None:
    revoke(host_name)
    redis_client().execute_command("ACL", "DELUSER", keys.acl_user(host_name))


def load_scripts() -> None:
    for script in SCRIPTS:
        redis_client().script_load(script)


def apply_all() -> None:
    """Every host's user as its row says, and the scripts agents run in the server's cache."""
    hosts = list(Host.objects.all())
    if hosts:
        load_scripts()
    for host in hosts:
        apply(host)


def take_refusals() -> list[Refusal]:
    """What Redis refused a fleet user since the last call: logins, and commands, keys or channels
    beyond its rules (a host probing others'). Redis 7.0's log entries have no id to resume from,
    so the log is read and emptied in one transaction: none is seen twice, none is lost in between.
    (This Redis is Switchyard's broker: no one else reads its ACL log.)"""
    with redis_client().pipeline(transaction=True) as pipe:
        pipe.execute_command("ACL", "LOG", _LOG_ENTRIES)
        pipe.execute_command("ACL", "LOG", "RESET")
        entries, _ = pipe.execute()
    found = []
    for entry in map(_as_dict, entries):
        username = entry.get("username", "")
        # redis-py names its connection with CLIENT SETINFO where Redis has it (7.2): not a probe
        if username.startswith(f"{keys.PREFIX}-") and entry.get("object") != "client|setinfo":
            found.append(Refusal(username[len(keys.PREFIX) + 1:], entry.get("reason", ""), entry.get("object", ""),
                                 entry.get("client-info", ""), int(entry.get("count", 1))))
    return found


def _as_dict(raw) -> dict[str, str]:
    """An ACL LOG entry or ACL GETUSER's answer: redis-py hands either over as a flat list of names
    and values (RESP2)."""
    if isinstance(raw, dict):
        pairs = raw.items()
    else:
        pairs = zip(raw[::2], raw[1::2])
    return {_text(name): _text(value) for name, value in pairs}


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(_text, value))
    return value.decode() if isinstance(value, bytes) else str(value)
