"""Where a host lives in Redis. Everything of host h1 (its queue, kombu's bookkeeping, its task
results, its heartbeat) sits under the key prefix `fleet:h1:`; its ACL user may touch those keys
and channels and nothing else, so one host can neither read another's work nor forge it."""
PREFIX = "fleet"


def key_prefix(host: str) -> str:
    """kombu's and the result backend's global_keyprefix for this host."""
    return f"{PREFIX}:{host}:"


def queue(host: str) -> str:
    return f"host.{host}"


def heartbeat_key(host: str) -> str:
    return f"{key_prefix(host)}heartbeat"


def panel_certificate_key(host: str) -> str:
    """Where the agent finds the certificate that signs its work (checked against the fingerprint
    in the command that started it)."""
    return f"{key_prefix(host)}panel-certificate"


def acl_user(host: str) -> str:
    return f"{PREFIX}-{host}"


def acl_rules(host: str, credential_hash: str) -> list[str]:
    """ACL SETUSER's rules: its own keys and channels, and no command that reaches past them
    (KEYS, FLUSHALL, CONFIG, ACL, CLIENT KILL ...: @dangerous)."""
    own = key_prefix(host)
    return ["reset", "on", f"#{credential_hash}", f"~{own}*", f"&{own}*",
            "+@all", "-@dangerous"]
