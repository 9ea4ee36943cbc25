"""App containers and build steps cannot reach the host's own services, the cloud metadata
address or private networks (engine/egress.py); an allow-listed address they can; a rule removed
by hand is noticed by `manage.py egress --check` and put back by `--apply` (as at every start;
the command runs in the test's process).
DNS to the nameservers dockerd uses passes, on a private address too, and nothing else there does."""
import http.server
import io
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from deployments.dockerd import containers, daemon, networks
from deployments.dockerd.values import LABEL_INSTANCE
from panel.env import env_networks, env_str
from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
METADATA = "169.254.169.254"


@contextmanager
def _host_server():
    """An HTTP server on all of the host's addresses (as a careless host service would be), with the
    metadata address added to the host's loopback for the test (a cloud host routes it the same way)."""
    secret = f"secret-{uuid.uuid4().hex}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(secret)))
            self.end_headers()
            self.wfile.write(secret.encode())

        def log_message(self, *args) -> None:
            pass

    added = subprocess.run(["ip", "addr", "add", f"{METADATA}/32", "dev", "lo"], capture_output=True, timeout=10)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], secret
    finally:
        server.shutdown()
        server.server_close()
        if added.returncode == 0:  # one that was there before is left as it was
            subprocess.run(["ip", "addr", "del", f"{METADATA}/32", "dev", "lo"], capture_output=True, timeout=10)


@contextmanager
def _lan_host(secret: str, dns_answer: str = ""):
    """Another machine on a private network: a network namespace behind a veth pair, 10.251.N.2,
    serving the secret (and, given `dns_answer`, a nameserver on port 53 answering it). The host
    routes to it, as to a LAN (traffic to it goes through FORWARD)."""
    tag = uuid.uuid4().hex[:6]
    namespace, outside, inside = f"sylan{tag}", f"sylo{tag}", f"syli{tag}"
    subnet = 1 + int(tag, 16) % 250
    commands = [["ip", "netns", "add", namespace],
                ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", namespace],
                ["ip", "addr", "add", f"10.251.{subnet}.1/30", "dev", outside], ["ip", "link", "set", outside, "up"],
                ["ip", "-n", namespace, "addr", "add", f"10.251.{subnet}.2/30", "dev", inside],
                ["ip", "-n", namespace, "link", "set", inside, "up"],
                ["ip", "-n", namespace, "route", "add", "default", "via", f"10.251.{subnet}.1"]]
    server = resolver = None
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=10)
        root = Path(f"/tmp/{namespace}")
        root.mkdir()
        (root / "index.html").write_text(secret)
        server = subprocess.Popen(["ip", "netns", "exec", namespace, "/bin/busybox", "httpd", "-f",
                                   "-p", f"10.251.{subnet}.2:80", "-h", str(root)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = f"10.251.{subnet}.2"
        if dns_answer:
            resolver = _start_resolver(address, dns_answer, namespace)
        eventually(lambda: _listens(address, 80) or server.poll() is not None, "the LAN host's server starting", 20)
        assert server.poll() is None, "the LAN host's server exited"
        yield address
    finally:
        for process in (server, resolver):
            if process is not None:
                process.kill()
                process.wait(timeout=10)
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        shutil.rmtree(f"/tmp/{namespace}", ignore_errors=True)


def _start_resolver(address: str, answer: str, namespace: str = "") -> subprocess.Popen:
    """tests/support/dnsresponder.py on address:53 (in `namespace`, if given), answering `answer`."""
    inside = ["ip", "netns", "exec", namespace] if namespace else []
    process = subprocess.Popen([*inside, sys.executable, str(ROOT / "tests" / "support" / "dnsresponder.py"), address, "53", answer],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # binding a socket takes no longer; one that failed has exited by now
    assert process.poll() is None, process.stderr.read()
    return process


@contextmanager
def _host_resolver(address: str, answer: str):
    process = _start_resolver(address, answer)
    try:
        yield
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def _container_using_nameserver(app_name: str, nameserver: str):
    """A container of the app's image on its network whose Docker DNS forwards to `nameserver`
    (as it forwards to the host's nameservers), from the container's network namespace."""
    docker = daemon.client()
    image = docker.containers.get(containers.listed(app_name)[0].id).image
    container = docker.containers.run(image.id, ["sleep", "120"], entrypoint=["/bin/busybox"], detach=True,
                                      network=networks.network_name(app_name), dns=[nameserver],
                                      labels={LABEL_INSTANCE: settings.SWITCHYARD["INSTANCE"]})
    try:
        yield container.id
    finally:
        container.remove(force=True)


def _resolve_in(container_id: str, name: str) -> str:
    result = daemon.client().containers.get(container_id).exec_run(
        ["/bin/busybox", "timeout", "10", "/bin/busybox", "nslookup", name])
    return result.output.decode(errors="replace")


def _listens(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


def _host_address() -> str:
    """The host's address on the interface of its default route (its LAN address)."""
    route = subprocess.run(["ip", "-4", "route", "get", "192.0.2.123"], capture_output=True, text=True, timeout=10)
    words = route.stdout.split()
    return words[words.index("src") + 1]


def _fetch_from(container_id: str, url: str) -> str:
    result = daemon.client().containers.get(container_id).exec_run(
        ["/bin/busybox", "timeout", "5", "/bin/busybox", "wget", "-q", "-O", "-", url])
    return result.output.decode(errors="replace")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


# The settings a start reads from these variables, parsed as panel/settings/switchyard.py does.
EGRESS_VARIABLES = {"SWITCHYARD_EGRESS_ALLOW": ("EGRESS_ALLOW", env_networks),
                    "SWITCHYARD_EGRESS_RESOLV_CONF": ("EGRESS_RESOLV_CONF", lambda name: env_str(name, ""))}


def _manage(command: str, option: str, **env: str) -> Ran:
    """`manage.py egress OPTION` as a start with these variables runs it, in this process: a new
    Django process per call costs seconds on a loaded machine, and the rules are the host's anyway."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in env.items():
            patch.setenv(variable, value)
            key, parse = EGRESS_VARIABLES[variable]
            patch.setitem(settings.SWITCHYARD, key, parse(variable))
        try:
            call_command(command, option, stdout=out, stderr=err)
        except CommandError as error:
            return Ran(1, out.getvalue(), str(error))
    return Ran(0, out.getvalue(), err.getvalue())


def _build_probing(host: str, port: int, lan: str) -> str:
    """A RUN step that fetches from the host, the metadata address and the LAN host, writing each
    answer (or `blocked`) to /www/build.txt."""
    return ('RUN ["/bin/busybox", "sh", "-c", "for u in ' + f"http://{host}:{port}/ http://{METADATA}:{port}/ http://{lan}/"
            + '; do /bin/busybox timeout 5 /bin/busybox wget -q -O - $u >> /www/build.txt 2>&1 '
            '|| echo blocked >> /www/build.txt; done"]\n')


def _allowed_addresses_are_reachable_until_a_start_without_them(container_id: str, *, host: str, port: int,
                                                                 lan: str, gateway: str, secret: str) -> None:
    """An address the administrator allows is reachable (the rules are replaced as at a start)."""
    assert _manage("egress", "--apply", SWITCHYARD_EGRESS_ALLOW=f"{host}/32,{lan}").returncode == 0
    assert _fetch_from(container_id, f"http://{host}:{port}/") == secret
    assert _fetch_from(container_id, f"http://{lan}/") == secret
    assert secret not in _fetch_from(container_id, f"http://{gateway}:{port}/")
    repaired = _manage("egress", "--apply")
    assert "repaired" in repaired.stdout, repaired.stdout + repaired.stderr
    assert secret not in _fetch_from(container_id, f"http://{host}:{port}/")
    assert secret not in _fetch_from(container_id, f"http://{lan}/")


def _a_rule_removed_by_hand_is_found_and_repaired(container_id: str, rules, *, host: str, port: int,
                                                  secret: str) -> None:
    """The container reaches the host again, the check says so, a start repairs it."""
    chain, jump = next((chain, rule) for chain, rule in rules.jumps if chain == "INPUT")
    subprocess.run(["iptables", "-w", "5", "-D", chain, *jump], check=True, timeout=20)
    assert _fetch_from(container_id, f"http://{host}:{port}/") == secret
    checked = _manage("egress", "--check")
    assert checked.returncode != 0 and "the jump from INPUT" in checked.stderr, checked.stderr
    repaired = _manage("egress", "--apply")
    assert repaired.returncode == 0 and "repaired" in repaired.stdout, repaired.stdout + repaired.stderr
    assert _manage("egress", "--check").stdout.strip() == "egress rules in place"
    assert secret not in _fetch_from(container_id, f"http://{host}:{port}/")


def test_containers_and_build_steps_cannot_reach_the_host_metadata_or_private_addresses(stack, app_repo):
    host = _host_address()
    with _host_server() as (port, secret), _lan_host(secret) as lan:
        app_repo.commit_version("v1", extra_dockerfile=_build_probing(host, port, lan))
        app = stack.create_app(app_repo, name="prober")
        deployment = stack.deploy_and_wait(app)
        assert deployment.state == "succeeded", deployment.error
        status, built = stack.get("prober.localhost", "/build.txt")
        assert status == 200 and secret not in built and built.count("blocked") == 3, built

        container = containers.listed("prober")[0]
        attached = daemon.client().api.inspect_container(container.id)["NetworkSettings"]["Networks"]
        gateway = attached[networks.network_name("prober")]["Gateway"]  # the host, on the app's bridge
        for target in (gateway, host, METADATA):
            assert secret not in _fetch_from(container.id, f"http://{target}:{port}/"), target
        assert secret not in _fetch_from(container.id, f"http://{lan}/")  # a machine on a private network
        assert stack.get("prober.localhost") == (200, "v1")  # HAProxy still reaches it from the host

        from deployments.engine import egress
        rules = egress.expected()
        _allowed_addresses_are_reachable_until_a_start_without_them(container.id, host=host, port=port, lan=lan,
                                                                    gateway=gateway, secret=secret)
        _a_rule_removed_by_hand_is_found_and_repaired(container.id, rules, host=host, port=port, secret=secret)


def test_containers_resolve_through_dockerds_nameservers_on_private_addresses_and_reach_nothing_else_there(
        stack, app_repo, tmp_path):
    """The host's nameservers on a LAN machine (FORWARD) and on the host's own private address
    (INPUT): Docker's DNS forwards a container's queries to them from the container's namespace."""
    host, answer = _host_address(), "192.0.2.77"
    app_repo.commit_version("v1")
    stack.deploy_and_wait(stack.create_app(app_repo, name="resolver"))
    resolv_conf = tmp_path / "resolv.conf"
    with _host_server() as (port, secret), _lan_host(secret, dns_answer=answer) as lan, \
            _host_resolver(host, answer):
        resolv_conf.write_text(f"# as dockerd reads it\nsearch example.com\nnameserver {lan}\nnameserver {host}\n"
                               "nameserver ::1\n")
        try:
            with _container_using_nameserver("resolver", lan) as via_lan, \
                    _container_using_nameserver("resolver", host) as via_host:
                # Not one of dockerd's nameservers: blocked like any other private address.
                assert _manage("egress", "--apply", SWITCHYARD_EGRESS_RESOLV_CONF=str(tmp_path / "none")).returncode == 0
                for container in (via_lan, via_host):
                    assert answer not in _resolve_in(container, "probe.example")

                applied = _manage("egress", "--apply", SWITCHYARD_EGRESS_RESOLV_CONF=str(resolv_conf))
                assert applied.returncode == 0, applied.stderr
                for container in (via_lan, via_host):
                    resolved = _resolve_in(container, "probe.example")
                    assert f"Address: {answer}" in resolved, resolved
                # Port 53 only: the same addresses' other services stay out of reach.
                assert secret not in _fetch_from(via_lan, f"http://{lan}/")
                assert secret not in _fetch_from(via_host, f"http://{host}:{port}/")
                checked = _manage("egress", "--check", SWITCHYARD_EGRESS_RESOLV_CONF=str(resolv_conf))
                assert checked.stdout.strip() == "egress rules in place", checked.stdout + checked.stderr
        finally:
            _manage("egress", "--apply")  # the rules of this run's worker again




def _jumps_missing_from(saved: str, rules) -> list[str]:
    """The jumps of `rules` not in an `iptables-save` listing."""
    lines = saved.splitlines()
    return [f"{chain} {rule[1]}" for chain, rule in rules.jumps
            if not any(line.startswith(f"-A {chain} -i {rule[1]} ") and line.endswith(f"-j {rule[-1]}") for line in lines)]


def test_a_repair_never_takes_a_jump_out_even_for_a_moment(stack):
    """Every repair puts the jumps first in the same transaction that replaces the chains: a
    listing taken at any moment during repairs has every jump (a jump taken out and put back in
    two steps once let a build step reach the LAN while another process repaired the rules)."""
    from deployments.engine import egress
    rules, gaps, stop = egress.expected(), [], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, timeout=20).stdout
            gaps.extend(_jumps_missing_from(saved, rules))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(20):  # a harmless difference (one more reject), then a repair of it
            subprocess.run(["iptables", "-w", "5", "-A", rules.forward_chain, "-d", "192.0.2.1/32", "-j", "REJECT"],
                           check=True, timeout=20)
            assert any("differs" in problem for problem in egress.ensure())
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert gaps == [], f"listings without a jump: {gaps[:5]}"
    assert egress.missing(rules) == []
    saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, timeout=20).stdout
    for chain, rule in rules.jumps:  # each repair took out the copy it put in before: one of each
        assert sum(line.startswith(f"-A {chain} -i {rule[1]} ") and line.endswith(f"-j {rule[-1]}")
                   for line in saved.splitlines()) == 1, (chain, rule)
