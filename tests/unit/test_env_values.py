"""Settings read from the environment stop start-up with the variable's name and what to fix."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from panel.env import env_ipv4_network, env_runtimes


@pytest.mark.parametrize("value, complaint", [
    ("172.16.0.1/16", "is not an IPv4 range like 172.16.0.0/16"),
    ("172.16.0.0/28", "is too small: give a /26 or larger"),
    ("fd00::/64", "is not an IPv4 range"),
])
def test_a_bad_app_subnet_pool_stops_start_up_naming_the_variable(monkeypatch, value, complaint):
    monkeypatch.setenv("SWITCHYARD_APP_SUBNETS", value)
    with pytest.raises(ImproperlyConfigured, match=f"SWITCHYARD_APP_SUBNETS=.*{complaint}"):
        env_ipv4_network("SWITCHYARD_APP_SUBNETS", "172.16.0.0/16", longest_prefix=26)


def test_allowed_runtimes_are_names_and_a_bad_list_stops_start_up(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_ALLOWED_RUNTIMES", " io.containerd.wasmedge.v1, io.containerd.spin.v2 ")
    assert env_runtimes("SWITCHYARD_ALLOWED_RUNTIMES", "x") == ("io.containerd.wasmedge.v1", "io.containerd.spin.v2")
    monkeypatch.setenv("SWITCHYARD_ALLOWED_RUNTIMES", "runc --privileged")
    with pytest.raises(ImproperlyConfigured, match="SWITCHYARD_ALLOWED_RUNTIMES=.*is not a list of runtime names"):
        env_runtimes("SWITCHYARD_ALLOWED_RUNTIMES", "x")
