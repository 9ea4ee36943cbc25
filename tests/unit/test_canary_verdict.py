"""The canary's arithmetic on its own: server weights for a share, and the verdict of a step."""
import pytest

from deployments.engine.canary import Figures, Policy, errors_worse, latency_worse
from deployments.haproxy.latency import Reservoir
from deployments.traffic.table import MAX_WEIGHT, canary_weights

POLICY = Policy(error_margin=1.0, latency_margin=50.0, latency_floor_ms=20, min_requests=20)


@pytest.mark.parametrize("percent, old, new", [(5, 2, 2), (25, 2, 2), (50, 1, 1), (5, 1, 3), (90, 3, 1), (1, 8, 8)])
def test_weights_give_the_new_servers_their_share_within_half_a_point(percent, old, new):
    old_weight, new_weight = canary_weights(percent, old, new)
    share = 100 * new * new_weight / (new * new_weight + old * old_weight)
    assert abs(share - percent) <= 0.5, share
    assert 1 <= old_weight <= MAX_WEIGHT and 1 <= new_weight <= MAX_WEIGHT


def test_no_canary_means_the_old_weight_only():
    assert canary_weights(0, 2, 2) == (1, 0) and canary_weights(5, 2, 0) == (1, 0)


@pytest.mark.parametrize("old, new, worse", [
    (Figures(1000, 0, 5), Figures(50, 5, 5), True),      # 10 % against 0 %
    (Figures(1000, 10, 5), Figures(50, 1, 5), False),    # 2 % against 1 %: within a point
    (Figures(1000, 0, 5), Figures(19, 19, 5), False),    # too few to judge yet
])
def test_the_5xx_ratio_is_compared_once_enough_requests_came(old, new, worse):
    assert bool(errors_worse(old, new, POLICY)) is worse


@pytest.mark.parametrize("old_p95, new_p95, worse", [(100, 160, True), (100, 140, False), (2, 15, False),
                                                      (None, 500, False)])
def test_p95_fails_only_beyond_the_margin_and_the_floor(old_p95, new_p95, worse):
    reason = latency_worse(Figures(1000, 0, old_p95), Figures(100, 0, new_p95), POLICY)
    assert bool(reason) is worse
    if worse:
        assert reason.startswith("p95: new 160 ms against old 100 ms")


def test_a_reservoir_keeps_a_bounded_sample_whose_p95_is_close():
    reservoir = Reservoir(size=2000)
    for value in range(100_000):
        reservoir.add(value % 1000)
    assert len(reservoir.values) == 2000 and reservoir.seen == 100_000
    assert 900 <= reservoir.percentile(95) <= 990


def test_a_deployment_that_ended_cannot_take_a_share_of_the_traffic_again(db):
    from deployments.engine import lifecycle
    from deployments.models import App, Deployment

    app = App.objects.create(name="shop", repo_url="/srv/shop.git")
    ended = Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED)  # reconcile took it for dead

    with pytest.raises(lifecycle.NotRunning):
        lifecycle.record_canary(ended, percent=25)
    lifecycle.record_canary(ended, percent=0)  # taking it out is always allowed

    assert Deployment.objects.get(pk=ended.pk).canary_percent == 0
