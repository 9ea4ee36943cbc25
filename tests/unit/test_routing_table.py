"""An app's route derived from what holds its colours (traffic/table.py app_route): no database."""
from deployments.traffic.table import (
    AppRoute,
    Backend,
    HealthCheck,
    Holder,
    RoutingTable,
    Server,
    Tls,
    app_route,
    canary_weights,
)

APP_HEALTH = HealthCheck("/health", 200, "shop.localhost", 2.0)
VERIFIED_WITH = HealthCheck("/old-health", 204, "shop.localhost", 1.0)
OLD = (Server("172.18.0.2", 8000), Server("172.18.0.3", 8000))
NEW = (Server("172.18.0.4", 8000),)


def route(*holders: Holder, live: str = "blue", canary_steps: bool = False, tls: Tls | None = None) -> AppRoute:
    return app_route(name="shop", hostnames=("shop.localhost",), live_colour=live, holders=holders,
                     health=APP_HEALTH, tls=tls, canary_steps=canary_steps)


def test_an_app_nobody_deployed_has_empty_backends_checked_with_its_own_health_check():
    derived = route()
    assert derived.backends == {"blue": Backend(APP_HEALTH), "green": Backend(APP_HEALTH)}
    assert not derived.canary and derived.backend("green") == "app_shop_green"


def test_a_holder_keeps_the_health_check_it_was_verified_with():
    derived = route(Holder("blue", VERIFIED_WITH, OLD))
    assert derived.backends["blue"] == Backend(VERIFIED_WITH, OLD)
    assert derived.backends["green"] == Backend(APP_HEALTH), "the idle colour: the next deployment's check"


def test_during_the_watch_the_old_release_serves_as_backups_of_the_new():
    derived = route(Holder("blue", VERIFIED_WITH, OLD), Holder("green", APP_HEALTH, NEW, backups=OLD), live="green")
    assert derived.backends["green"].backups == OLD and derived.backends["green"].servers == NEW
    assert derived.backends["blue"].backups == () and derived.live_colour == "green"


def test_a_canary_takes_c_slots_in_the_live_backend_and_keeps_its_own_colour():
    derived = route(Holder("blue", VERIFIED_WITH, OLD), Holder("green", APP_HEALTH, NEW, canary_percent=25))
    live = derived.backends["blue"]
    assert (live.servers, live.canaries, live.canary_percent) == (OLD, NEW, 25)
    assert live.weights() == canary_weights(25, 2, 1)
    assert derived.backends["green"] == Backend(APP_HEALTH, NEW), "its own backend, for the switch"
    assert derived.canary


def test_canary_slots_are_rendered_for_an_app_with_canary_steps_before_any_canary_runs():
    assert route(canary_steps=True).canary


def test_canary_weights_give_the_share_asked_for():
    assert canary_weights(0, 2, 2) == (1, 0) and canary_weights(100, 2, 2) == (0, 1)
    old, new = canary_weights(10, 2, 2)
    assert abs(100 * 2 * new / (2 * new + 2 * old) - 10) < 0.5


def test_the_table_finds_an_app_by_name():
    table = RoutingTable((route(),))
    assert table.app("shop").name == "shop" and table.app("other") is None


def test_a_certificate_verdict_key_follows_its_pem_and_its_sni_filters():
    one = Tls(("a.example",), True, True, "PEM")
    assert one.verdict_key == Tls(("a.example",), False, False, "PEM").verdict_key
    assert one.verdict_key != Tls(("a.example", "b.example"), True, True, "PEM").verdict_key
    assert one.verdict_key != Tls(("a.example",), True, True, "PEM2").verdict_key
