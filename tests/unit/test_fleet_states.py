"""A host's state from the silence since its last heartbeat, and the broker rules its credential gets."""
from datetime import datetime, timedelta, timezone

from deployments.fleet import heartbeats, keys

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)


def test_a_host_never_heard_from_is_new_then_healthy_suspect_after_10_s_and_down_after_30_s():
    assert heartbeats.judge(None, NOW) == "new"
    assert heartbeats.judge(NOW - timedelta(seconds=9.9), NOW) == "healthy"
    assert heartbeats.judge(NOW - timedelta(seconds=10), NOW) == "suspect"
    assert heartbeats.judge(NOW - timedelta(seconds=29.9), NOW) == "suspect"
    assert heartbeats.judge(NOW - timedelta(seconds=30), NOW) == "down"


def test_a_hosts_broker_user_reaches_only_its_own_keys_and_channels():
    rules = keys.acl_rules("h1", "ab" * 32)
    assert rules[:2] == ["reset", "on"] and f"#{'ab' * 32}" in rules
    assert [rule for rule in rules if rule[0] in "~&%"] == ["~fleet:h1:*", "&fleet:h1:*"]
    assert "-@all" in rules and "+brpop" in rules
    assert not {"+scan", "+keys", "+eval", "+randomkey", "+dbsize", "+client", "+@all"} & set(rules)
    assert keys.queue("h1") == "host.h1" and keys.heartbeat_key("h1").startswith(keys.key_prefix("h1"))
