"""HAProxy's config, maps and crt-list rendered from a routing table built by hand (haproxy/config.py),
and the runtime commands for its slots (haproxy/commands.py): no HAProxy, no database.

haproxy_rendered.json holds what the renderer produced for TABLE before traffic/table.py existed
(the config rendered by the router of that time): the reshaping changed no byte of it."""
import json
from pathlib import Path

import pytest

from deployments.haproxy import commands
from deployments.haproxy.apply import without_certificates
from deployments.haproxy.config import (
    PANEL_CERTIFICATE,
    Binds,
    Paths,
    hsts_entries,
    map_text,
    redirect_entries,
    render_config,
    render_crt_list,
    render_map,
)
from deployments.traffic.table import AppRoute, Backend, HealthCheck, PanelRoute, RoutingTable, Server, Tls

RENDERED = json.loads((Path(__file__).parent / "haproxy_rendered.json").read_text())
HEALTH = HealthCheck("/health", 200, "shop.localhost", 2.5)
PATHS = Paths(Path("/srv/haproxy"), stats=Path("/run/stats.sock"))
BINDS = {"plain": Binds(("0.0.0.0", 80), ("0.0.0.0", 443)),
         "exporter": Binds(("0.0.0.0", 8080), ("0.0.0.0", 8443), ("127.0.0.1", 9101), True)}


def servers(*last_octets: int) -> tuple[Server, ...]:
    return tuple(Server(f"172.18.0.{n}", 8000 + n) for n in last_octets)


ROUTES = [
    AppRoute("shop", ("shop.localhost", "www.shop.example"), "blue",
             {"blue": Backend(HEALTH, servers(2, 3), backups=servers(4)), "green": Backend(HEALTH, servers(4))},
             tls=Tls(("www.shop.example",), True, True, "PEM-SHOP")),
    AppRoute("canary", ("canary.localhost",), "green",
             {"blue": Backend(HEALTH, servers(7)),
              "green": Backend(HEALTH, servers(5, 6), canaries=servers(7), canary_percent=10)}, canary=True),
    AppRoute("bad name", ("x.localhost",), "blue", {"blue": Backend(HEALTH), "green": Backend(HEALTH)}),
    AppRoute("odd", ("odd.localhost", "not a host"), "blue",
             {"blue": Backend(HealthCheck("/it's", 200, "odd", 1.0)), "green": Backend(HEALTH)},
             tls=Tls(("odd.localhost", "panel.example"), False, True, "PEM-ODD")),
]
PANEL = PanelRoute("panel.example", Server("127.0.0.1", 8000), Tls(("panel.example",), True, False, "PEM-PANEL"))


@pytest.mark.parametrize("binds", BINDS)
@pytest.mark.parametrize("with_panel", [False, True])
def test_config_and_maps_are_byte_for_byte_what_they_were(binds, with_panel):
    panel = PANEL if with_panel else None
    assert render_config(ROUTES, PATHS, BINDS[binds], panel) == RENDERED[f"config-{binds}-{with_panel}"]
    assert render_crt_list(ROUTES, PATHS, panel) == RENDERED[f"crt-{with_panel}"]
    assert map_text(redirect_entries(ROUTES, panel)) == RENDERED[f"redirect-{with_panel}"]
    assert render_map(ROUTES) == RENDERED["map"]
    assert map_text(hsts_entries(ROUTES)) == RENDERED["hsts"]


def test_what_cannot_be_written_costs_only_its_own_app():
    config = render_config(ROUTES, PATHS, BINDS["plain"])
    assert "app_bad name" not in config and "x.localhost" not in render_map(ROUTES)
    assert "not a host" not in render_map(ROUTES) and "odd.localhost app_odd_blue" in render_map(ROUTES)
    assert "backend app_odd_blue\n    balance roundrobin\n    # HTTP health check left out" in config


def test_a_canary_backend_has_weights_cookies_and_c_slots():
    config = render_config(ROUTES, PATHS, BINDS["plain"])
    green = config[config.index("backend app_canary_green"):]
    old_weight, new_weight = ROUTES[1].backends["green"].weights()
    assert f"server s1 172.18.0.5:8005 check cookie s1 weight {old_weight}" in green
    assert f"server c1 172.18.0.7:8007 check cookie c1 weight {new_weight}" in green
    assert "server c2 127.0.0.1:1 check cookie c2 weight" in green and "cookie switchyard_release" in green


def test_backups_and_empty_slots():
    config = render_config(ROUTES, PATHS, BINDS["plain"])
    blue = config[config.index("backend app_shop_blue"):config.index("backend app_shop_green")]
    assert "    server b1 172.18.0.4:8004 check backup\n" in blue
    assert "    server s3 127.0.0.1:1 check disabled\n" in blue and "    server b8 127.0.0.1:1 check backup disabled" in blue


def test_runtime_commands_for_every_slot_of_the_table():
    lines = commands.every_server(RoutingTable((ROUTES[0],)))
    assert lines[:2] == ["set server app_shop_blue/s1 addr 172.18.0.2 port 8002", "set server app_shop_blue/s1 state ready"]
    assert "set server app_shop_blue/s3 state maint" in lines and "set server app_shop_blue/b1 state ready" in lines
    # A taken slot: address and state (2 commands); an empty one: maintenance (1). 8 s and 8 b slots a colour.
    blue = (2 * 2 + 6) + (1 * 2 + 7)
    green = (1 * 2 + 7) + 8
    assert len(lines) == blue + green


def test_a_canary_share_moves_weights_before_the_c_slots():
    backend = ROUTES[1].backends["green"]
    old_weight, new_weight = backend.weights()
    lines = commands.canary("app_canary_green", backend)
    assert lines[:3] == [f"set server app_canary_green/s1 weight {old_weight}",
                         f"set server app_canary_green/s2 weight {old_weight}",
                         f"set server app_canary_green/c1 weight {new_weight}"]
    assert lines[3:5] == ["set server app_canary_green/c1 addr 172.18.0.7 port 8007",
                          "set server app_canary_green/c1 state ready"]
    assert commands.ready("b", servers(9), "backups") == ["set server b/b1 addr 172.18.0.9 port 8009",
                                                          "set server b/b1 state ready"]
    assert commands.maintenance("b", 2) == ["set server b/s1 state maint", "set server b/s2 state maint"]


def test_commands_are_batched_by_bytes_and_never_split():
    long = [f"add map @1 /m {'h' * 200}{n}.example b" for n in range(100)]
    lines = commands.joined_in_batches(long)
    assert all(len(line.encode()) <= commands.MAP_BATCH_BYTES for line in lines) and len(lines) > 1
    assert "; ".join(lines).split("; ") == long


def test_refused_certificates_are_left_out_of_the_table_as_their_stored_refusal_would():
    table = RoutingTable(tuple(ROUTES), PANEL)
    without = without_certificates(table, {"shop", PANEL_CERTIFICATE})
    assert without.app("shop").tls is None and without.panel.tls is None
    assert without.app("odd").tls == ROUTES[3].tls and without.app("shop").backends == ROUTES[0].backends
