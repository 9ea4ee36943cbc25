"""A fleet on one machine, for the multi-host tests: each host a Linux network namespace on a
private bridge with a dockerd of its own (data root, exec root, socket, bridge subnet, cgroup
parent), plus the image registry (Debian's docker-registry) on the bridge. After the recipe in
../shared/rig/, with its three findings kept:

- dockerd starts under `nsenter --net=...`, not `ip netns exec`, which remounts /sys for the
  namespace and hides the cgroup mounts dockerd needs;
- the bridge needs one FORWARD accept rule in the root namespace: Docker loads br_netfilter with
  its FORWARD policy DROP, so frames between two hosts would be dropped;
- (for the agents) a Celery worker's idle Redis connection dies in a network cut:
  fleet/broker.py sets result_backend_always_retry.

`down()` stops everything `up()` started, removes everything it made, and raises if anything is
left: a namespace, a link, the rule, a mount, a process."""
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import docker

BRIDGE = "syh-br0"
NETWORK = "10.78.0"  # the hosts' private network; the panel's side of the bridge is .1
PANEL_ADDRESS = f"{NETWORK}.1"
REGISTRY_PORT = 5078
RUN = Path("/run/switchyard-rig")
DATA = Path("/var/lib/switchyard-rig")
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "switchyard-rig", "-j", "ACCEPT"]
COMMAND_TIMEOUT = 30


@dataclass
class RigHost:
    number: int
    dockerd: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"h{self.number}"

    @property
    def address(self) -> str:
        return f"{NETWORK}.{10 + self.number}"

    @property
    def netns(self) -> str:
        return f"syh-{self.name}"

    @property
    def veth(self) -> str:
        return f"syh-v-{self.name}"

    @property
    def run_dir(self) -> Path:
        return RUN / self.name

    @property
    def docker_host(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    def docker(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=60)


@dataclass
class Rig:
    count: int
    hosts: list[RigHost] = field(default_factory=list)
    registry: subprocess.Popen | None = None
    started: list[subprocess.Popen] = field(default_factory=list)  # agents and the like, stopped by down()

    @property
    def registry_address(self) -> str:
        return f"{PANEL_ADDRESS}:{REGISTRY_PORT}"

    def up(self) -> "Rig":
        _clear_stale()
        DATA.mkdir(parents=True, exist_ok=True)
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{PANEL_ADDRESS}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1":
            _run("iptables", "-I", *FORWARD_RULE[:1], "1", *FORWARD_RULE[1:])
        self.registry = _start_registry(self.registry_address)
        self.hosts = [self._start_host(RigHost(number)) for number in range(1, self.count + 1)]
        for host in self.hosts:
            _wait(lambda: _answers(host), f"dockerd of {host.name} did not answer", 60)
        return self

    def _start_host(self, host: RigHost) -> RigHost:
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _run("ip", "link", "set", host.veth, "master", BRIDGE, "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        host.run_dir.mkdir(parents=True, exist_ok=True)
        (host.run_dir / "daemon.json").write_text("{}")  # never the main daemon's /etc/docker/daemon.json
        log = open(DATA / f"dockerd-{host.name}.log", "ab")
        host.dockerd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{host.netns}", "--", "dockerd", "--config-file", str(host.run_dir / "daemon.json"),
             "--data-root", str(DATA / host.name / "docker"), "--exec-root", str(host.run_dir),
             "--pidfile", str(host.run_dir / "dockerd.pid"), "-H", host.docker_host,
             "--bip", f"172.31.{host.number}.1/24", "--default-address-pool", f"base=10.{110 + host.number}.0.0/16,size=24",
             "--insecure-registry", self.registry_address, "--containerd-namespace", f"syh-{host.name}",
             "--containerd-plugins-namespace", f"syh-{host.name}-plugins", "--cgroup-parent", f"/syh-{host.name}",
             "--storage-driver", "overlay2", "--shutdown-timeout", "5", "--log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return host

    def in_host(self, host: RigHost, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """A process in the host's namespace (an agent): stopped by down() if the test did not."""
        process = subprocess.Popen(["ip", "netns", "exec", host.netns, *argv], env={**env, "DOCKER_HOST": host.docker_host},
                                   stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        return process

    def cut(self, host: RigHost) -> None:
        """The host's link down: packets to and from it vanish, its processes run on (a partition)."""
        _run("ip", "link", "set", host.veth, "down")

    def heal(self, host: RigHost) -> None:
        _run("ip", "link", "set", host.veth, "up")

    def remove_containers(self) -> None:
        for host in self.hosts:
            _remove_containers(host)

    def down(self) -> None:
        for process in self.started:
            _stop(process, 20)
        for host in self.hosts:
            _remove_containers(host)
            if host.dockerd is not None:
                _stop(host.dockerd, 30)
        if self.registry is not None:
            _stop(self.registry, 10)
        for host in self.hosts:
            _quietly("ip", "netns", "del", host.netns)
            _quietly("ip", "link", "del", host.veth)
        _quietly("iptables", "-D", *FORWARD_RULE)
        _quietly("ip", "link", "del", BRIDGE)
        left = leftovers()
        subprocess.run(["rm", "-rf", str(RUN), str(DATA)], check=False, timeout=COMMAND_TIMEOUT)
        if left:
            raise AssertionError(f"the rig left {left}")


def leftovers() -> list[str]:
    """What a rig of this project would leave behind: namespaces, links, the rule, mounts, processes."""
    left = [f"namespace {name}" for name in _lines("ip", "netns", "list") if name.split()[0].startswith("syh-")]
    left += [f"link {line.split(':')[1].strip()}" for line in _lines("ip", "-o", "link") if " syh-" in line]
    if subprocess.run(["iptables", "-C", *FORWARD_RULE], capture_output=True, timeout=COMMAND_TIMEOUT).returncode == 0:
        left.append("the FORWARD rule")
    left += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
             if str(DATA) in line or str(RUN) in line]
    left += [f"process {pid}" for pid in _pids_mentioning(str(RUN))]
    return left


def _clear_stale() -> None:
    """What a killed run left: its processes, then its namespaces, links and rule by their names."""
    for pid in _pids_mentioning(str(RUN)) + _pids_mentioning(str(DATA)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in _lines("ip", "netns", "list"):
        if name.split()[0].startswith("syh-"):
            _quietly("ip", "netns", "del", name.split()[0])
    _quietly("iptables", "-D", *FORWARD_RULE)
    _quietly("ip", "link", "del", BRIDGE)
    for line in Path("/proc/mounts").read_text().splitlines():
        if str(DATA) in line or str(RUN) in line:
            _quietly("umount", "-l", line.split()[1])
    subprocess.run(["rm", "-rf", str(RUN), str(DATA)], check=False, timeout=COMMAND_TIMEOUT)


def _start_registry(address: str) -> subprocess.Popen:
    root = DATA / "registry"
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: {address}\n")
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                               stdout=open(DATA / "registry.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    _wait(lambda: _http_ok(f"http://{address}/v2/") or process.poll() is not None, "the registry did not answer", 20)
    assert process.poll() is None, (DATA / "registry.log").read_text()[-2000:]
    return process


def _answers(host: RigHost) -> bool:
    if host.dockerd is not None and host.dockerd.poll() is not None:
        raise AssertionError(f"dockerd of {host.name} exited: {(DATA / f'dockerd-{host.name}.log').read_text()[-2000:]}")
    try:
        return host.docker().ping()
    except docker.errors.DockerException:
        return False


def _remove_containers(host: RigHost) -> None:
    if host.dockerd is None or host.dockerd.poll() is not None:
        return
    client = host.docker()
    for container in client.containers.list(all=True):
        container.remove(force=True)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to its process group, SIGKILL after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _wait(condition, message: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=COMMAND_TIMEOUT)


def _quietly(*argv: str) -> None:
    subprocess.run(argv, check=False, capture_output=True, timeout=COMMAND_TIMEOUT)


def _lines(*argv: str) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT).stdout.splitlines()
