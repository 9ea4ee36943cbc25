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


# What an agent's connections send (kombu's Redis transport, Celery's result backend, redis-py, the
# heartbeat), command by command. Nothing else: no command that lists or watches the keyspace
# (SCAN, RANDOMKEY, DBSIZE, KEYS, CLIENT TRACKING), no script of its own (EVAL, SCRIPT LOAD: one
# that never ends holds the whole server), nothing of the server's own (CONFIG, ACL, FLUSHALL...).
# EVALSHA runs only what is in the server's script cache: the panel loads there the one script an
# agent runs, redis-py's lock release, which kombu's mutex uses (credentials.SCRIPTS); a script's
# commands are held to the caller's key rules too.
AGENT_COMMANDS = (
    "ping", "auth", "hello", "echo", "select", "client|setname", "client|getname", "client|id",
    "get", "set", "setex", "psetex", "setnx", "mget", "del", "unlink", "exists", "type", "expire", "pexpire",
    "ttl", "pttl", "incr", "incrby", "decr",
    "lpush", "rpush", "lpop", "rpop", "brpop", "blpop", "llen", "lrange", "lrem", "ltrim", "lindex",
    "sadd", "srem", "smembers", "sismember", "scard",
    "hset", "hget", "hdel", "hgetall", "hkeys", "hlen", "hmget", "hexists",
    "zadd", "zrem", "zrange", "zrangebyscore", "zrevrangebyscore", "zcard", "zscore",
    "multi", "exec", "discard", "watch", "unwatch",
    "publish", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "evalsha",
)


def acl_rules(host: str, credential_hash: str) -> list[str]:
    """ACL SETUSER's rules: its own keys and channels, and only the commands an agent sends."""
    own = key_prefix(host)
    return ["reset", "on", f"#{credential_hash}", f"~{own}*", f"&{own}*", "-@all",
            *(f"+{command}" for command in AGENT_COMMANDS)]
