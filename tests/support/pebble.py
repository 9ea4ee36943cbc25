"""A real ACME server for the tests: Debian's pebble, with pebble-challtestsrv as its DNS.

The DNS server answers 127.0.0.1 for every name, and pebble validates HTTP-01 on the suite's
own HAProxy HTTP port, so the whole validation runs through Switchyard's HAProxy. Pebble
serves its API over HTTPS with a certificate from a CA of the test's own (the file given to
Switchyard as SWITCHYARD_ACME_CA_BUNDLE); the certificates it issues chain to a root it makes
at start, read from its management port.
"""
import json
import os
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

from tests.support.eventually import eventually
from tests.support.processes import free_port
from tests.support.tls import PrivateCA


class Pebble:
    def __init__(self, directory: Path, http_port: int) -> None:
        self.directory = directory
        self.http_port = http_port
        self.acme_port, self.management_port = free_port(), free_port()
        self.dns_port, self.dns_management_port = free_port(), free_port()
        self.ca = PrivateCA("pebble's listener CA")
        self.processes: list[subprocess.Popen] = []

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def ca_bundle(self) -> Path:
        return self.directory / "listener-ca.pem"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        listener = self.ca.issue(["localhost"], ips=["127.0.0.1"])
        (self.directory / "cert.pem").write_text(listener.chain_pem)
        (self.directory / "key.pem").write_text(listener.key_pem)
        self.ca_bundle.write_text(self.ca.pem)
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.acme_port}",
                             "managementListenAddress": f"127.0.0.1:{self.management_port}",
                             "certificate": str(self.directory / "cert.pem"), "privateKey": str(self.directory / "key.pem"),
                             "httpPort": self.http_port, "tlsPort": free_port(), "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        (self.directory / "pebble.json").write_text(json.dumps(config))
        self._spawn("challtestsrv", ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                                     "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
                                     "-tlsalpn01", "", "-management", f"127.0.0.1:{self.dns_management_port}"])
        self._wait_for(self.dns_management_port)
        # No random sleeps, no nonces refused at random, no reused authorizations: each order
        # validates for real, the same way every run.
        env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self._spawn("pebble", ["pebble", "-config", str(self.directory / "pebble.json"),
                               "-dnsserver", f"127.0.0.1:{self.dns_port}"], env)
        self._wait_for(self.acme_port)
        self._wait_for(self.management_port)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes = []

    def root_pem(self) -> str:
        """The root the certificates pebble issues chain to (new at every start)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}/roots/0", context=context,
                                    timeout=10) as answer:
            return answer.read().decode()

    def resolve(self, host: str, address: str) -> None:
        """Make the DNS server answer `address` for `host` (say, where nothing listens)."""
        self._dns_management("add-a", {"host": host, "addresses": [address]})

    def resolve_as_default(self, host: str) -> None:
        """`host` resolves to 127.0.0.1 again, like every other name."""
        self._dns_management("clear-a", {"host": host})

    def _dns_management(self, action: str, body: dict) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.dns_management_port}/{action}",
                                         data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.directory / f"{name}.log", "a")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                               env={**os.environ, **(env or {})}))

    def _wait_for(self, port: int, timeout: float = 15) -> None:
        def opened() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        def logs() -> str:
            return f"port {port} opening ({ {p.name: p.read_text()[-1500:] for p in self.directory.glob('*.log')} })"
        eventually(opened, logs, timeout, interval=0.1)
