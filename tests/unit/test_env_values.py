"""Settings read from the environment stop start-up with the variable's name and what to fix."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from panel.env import env_ipv4_network


@pytest.mark.parametrize("value, complaint", [
    ("172.16.0.1/16", "is not an IPv4 range like 172.16.0.0/16"),
    ("172.16.0.0/28", "is too small: give a /26 or larger"),
    ("fd00::/64", "is not an IPv4 range"),
])
def test_a_bad_app_subnet_pool_stops_start_up_naming_the_variable(monkeypatch, value, complaint):
    monkeypatch.setenv("SWITCHYARD_APP_SUBNETS", value)
    with pytest.raises(ImproperlyConfigured, match=f"SWITCHYARD_APP_SUBNETS=.*{complaint}"):
        env_ipv4_network("SWITCHYARD_APP_SUBNETS", "172.16.0.0/16", longest_prefix=26)
