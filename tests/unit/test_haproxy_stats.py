"""HAProxy's stats CSV read into typed values (haproxy/stats.py), without HAProxy."""
from deployments.haproxy import stats
from deployments.haproxy.stats import Responses

CSV = """# pxname,svname,qcur,scur,status,check_status,check_desc,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,
app_shop_blue,FRONTEND,0,0,OPEN,,,0,0,0,0,0,
app_shop_blue,s1,0,1,UP,L7OK,Layer7 check passed,0,90,3,2,5,
app_shop_blue,s2,0,0,DOWN,L4CON,Connection refused,0,0,0,0,0,
app_shop_blue,b1,0,0,MAINT,,,0,0,0,0,0,
app_shop_blue,c1,0,0,UP 1/2,L7OK,,0,10,0,0,1,
app_shop_blue,BACKEND,0,1,UP,,,0,100,3,2,9,
app_shop_green,s1,0,0,UP,L7OK,,1,1,0,0,0,
"""


def test_server_rows_become_typed_values_in_slot_order():
    servers = stats.parse_servers(CSV)
    assert [(s.backend, s.slot) for s in servers] == [
        ("app_shop_blue", "s1"), ("app_shop_blue", "s2"), ("app_shop_blue", "b1"), ("app_shop_blue", "c1"),
        ("app_shop_green", "s1")]
    first, second = servers[:2]
    assert first.answered == Responses(100, 5) and first.checked_up and not first.down
    assert second.down and second.describe() == "s2 DOWN L4CON Connection refused"
    assert not servers[3].checked_up, "rising (UP 1/2) is not yet UP after its own check"


def test_backend_rows_count_haproxys_own_answers():
    assert stats.parse_backends(CSV) == {"app_shop_blue": Responses(114, 9)}


def test_answers_summed_per_backend_and_since_a_baseline():
    per_backend = stats.by_backend(stats.parse_servers(CSV))
    assert per_backend == {"app_shop_blue": Responses(111, 6), "app_shop_green": Responses(2, 0)}
    assert stats.total(per_backend.values()) == Responses(113, 6)
    assert Responses(120, 8).since(Responses(100, 5)) == Responses(20, 3)
    assert Responses(3, 1).since(Responses(100, 5)) == Responses(3, 1), "a reload restarted the counters"
    assert Responses(200, 3).error_percent == 1.5 and Responses().error_percent == 0.0
