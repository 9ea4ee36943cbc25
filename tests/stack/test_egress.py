"""App containers and build steps cannot reach the host's own services, the cloud metadata
address or private networks (engine/egress.py); an allow-listed address they can; a rule removed
by hand is noticed by `manage.py egress --check` and put back by `--apply` (as at every start;
the command runs in the test's process).
DNS to the nameservers dockerd uses passes, on a private address too, and nothing else there does.
No container gets through while Docker creates networks (it once did, through DOCKER-USER)."""
import hashlib
import http.server
import io
import os
import shutil
import signal
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
from tests.support import egress_table
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
    egress_table.delete_jump(rules, "input")
    assert _fetch_from(container_id, f"http://{host}:{port}/") == secret
    checked = _manage("egress", "--check")
    assert checked.returncode != 0 and "the jump from the input hook" in checked.stderr, checked.stderr
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
    stack.deploy_live(stack.create_app(app_repo, name="resolver"))
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




def test_a_repair_never_takes_a_jump_out_even_for_a_moment(stack):
    """Every repair replaces the whole table in one transaction: a listing taken at any moment
    during repairs has every jump (a jump taken out and put back in two steps once let a build
    step reach the LAN while another process repaired the rules)."""
    from deployments.engine import egress
    rules, gaps, stop = egress.expected(), [], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            gaps.extend(egress_table.jumps_missing(rules))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(20):  # a harmless difference (one more reject), then a repair of it
            egress_table.add_rule(rules, egress.FORWARD_CHAIN, "ip daddr 192.0.2.1 reject")
            assert any("differs" in problem for problem in egress.ensure())
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert gaps == [], f"listings without a jump: {gaps[:5]}"
    assert egress.missing(rules) == []
    jumps = [rule for rule in egress_table.rules_of(rules) if rule["chain"] in ("forward", "input")]
    assert len(jumps) == sum(len(chain.rules) for chain in rules.chains if chain.hook)  # one of each


NETWORKS_MADE = 30


def _kill_process_tree_of(exec_id: str) -> None:
    """The exec's shell, its loops and their wgets."""
    tree, index = [daemon.client().api.exec_inspect(exec_id)["Pid"]], 0
    while index < len(tree):
        children = subprocess.run(["pgrep", "-P", str(tree[index])], capture_output=True, text=True, timeout=10)
        tree += [int(pid) for pid in children.stdout.split()]
        index += 1
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_no_container_gets_through_while_docker_creates_networks(stack, app_repo):
    """dockerd takes its FORWARD jumps to DOCKER-USER and to its isolation chains out and puts them
    back at every network it creates, with the new bridge's ACCEPT rules first meanwhile: rules
    in DOCKER-USER, and Docker's isolation of one app from another, let containers through for
    those moments. A container asks a LAN host and another app's container over and over while
    networks are made; not one answer gets through."""
    other = f"other-{uuid.uuid4().hex}"
    app_repo.commit_version(other)
    assert stack.deploy_and_wait(stack.create_app(app_repo, name="other")).state == "succeeded"
    app_repo.commit_version("v1")
    assert stack.deploy_and_wait(stack.create_app(app_repo, name="asker")).state == "succeeded"
    container, target = containers.listed("asker")[0], containers.listed("other")[0]
    secret = f"secret-{uuid.uuid4().hex}"
    with _lan_host(secret) as lan:
        # No -T: Debian's static busybox wget dies of SIGSEGV with it once a connection is made.
        probe = (f"/bin/busybox wget -q -O - http://{lan}/ 2>/dev/null; "
                 f"/bin/busybox wget -q -O - http://{target.ip}:8000/ 2>/dev/null; echo .")
        asking = daemon.client().api.exec_create(container.id, [  # four askers: a gap lasts a millisecond or two
            "/bin/busybox", "sh", "-c", f"for i in 1 2 3 4; do (while true; do {probe}; done) & done; wait"])
        answers = daemon.client().api.exec_start(asking["Id"], stream=True)
        try:
            for _ in range(NETWORKS_MADE):
                name = f"{settings.SWITCHYARD['DOCKER_NETWORK']}-gap-{uuid.uuid4().hex[:6]}"
                daemon.client().networks.create(name, labels={LABEL_INSTANCE: settings.SWITCHYARD["INSTANCE"]}).remove()
        finally:
            _kill_process_tree_of(asking["Id"])
            heard = b"".join(answers).decode(errors="replace")
    assert heard.count(".") > NETWORKS_MADE, heard[-500:]  # it kept asking all along
    assert secret not in heard and other not in heard


def test_the_iptables_rules_of_earlier_versions_are_taken_out_and_nothing_else():
    """An installation upgraded from the iptables rules: its chains and jumps go, another
    installation's stay (they still keep that one's containers in)."""
    from deployments.engine import egress_iptables
    upgraded, other = f"upgraded-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    _old_style_rules(upgraded)
    _old_style_rules(other)
    try:
        assert egress_iptables.remove_earlier_rules(upgraded) == ""
        saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, timeout=20).stdout
        assert upgraded not in saved and _old_chain(upgraded, "FWD") not in saved
        assert saved.count(f'"switchyard {other}"') == 2 and f":{_old_chain(other, 'IN')} " in saved
        assert egress_iptables.remove_earlier_rules(upgraded) == ""  # nothing left to do
    finally:
        egress_iptables.remove_earlier_rules(other)


def _old_chain(instance: str, kind: str) -> str:
    return f"SY-{hashlib.sha1(instance.encode()).hexdigest()[:8]}-{kind}"


def _old_style_rules(instance: str) -> None:
    """As egress.py installed them before the nftables table."""
    comment = f'-m comment --comment "switchyard {instance}"'
    forward, inbound = _old_chain(instance, "FWD"), _old_chain(instance, "IN")
    script = ["*filter", f":{forward} - [0:0]", f":{inbound} - [0:0]", f"-A {forward} -d 10.0.0.0/8 -j REJECT",
              f"-A {inbound} -j REJECT", f"-I DOCKER-USER 1 -i syold+ {comment} -j {forward}",
              f"-I INPUT 1 -i syold+ {comment} -j {inbound}", "COMMIT", ""]
    subprocess.run(["iptables-restore", "-w", "5", "--noflush"], input="\n".join(script), text=True, check=True,
                   capture_output=True, timeout=20)
