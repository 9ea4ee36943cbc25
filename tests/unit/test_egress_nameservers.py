"""The nameservers app containers may ask (egress rules): read from the file dockerd reads."""
from django.conf import settings
from django.test import override_settings

from deployments.engine import egress


def test_the_nameservers_are_read_as_dockerd_reads_them(tmp_path, monkeypatch):
    """systemd-resolved's stub as the only nameserver: dockerd reads the file with its upstream
    servers instead; IPv4 addresses only (app networks have no IPv6), each once."""
    resolv_conf, upstream = tmp_path / "resolv.conf", tmp_path / "upstream.conf"
    upstream.write_text("nameserver 192.168.1.1\nnameserver 2001:db8::1\n")
    monkeypatch.setattr(egress, "SYSTEMD_RESOLVED_CONF", upstream)
    expected = {"nameserver 127.0.0.53\noptions edns0 trust-ad\n": ["192.168.1.1"],
                "nameserver 127.0.0.53\nnameserver ::1\n": ["127.0.0.53"],  # not the stub alone: read as it is
                "nameserver 10.0.0.2\nnameserver 10.0.0.2\n# nameserver 10.9.9.9\nnameserver bogus\n": ["10.0.0.2"]}
    for text, nameservers in expected.items():
        resolv_conf.write_text(text)
        with override_settings(SWITCHYARD={**settings.SWITCHYARD, "EGRESS_RESOLV_CONF": str(resolv_conf)}):
            assert egress.nameservers() == nameservers, text
    with override_settings(SWITCHYARD={**settings.SWITCHYARD, "EGRESS_RESOLV_CONF": str(tmp_path / "none")}):
        assert egress.nameservers() == []
