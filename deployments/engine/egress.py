"""Egress rules: what app containers and build steps may reach (iptables, the host adapter).

Every app network's bridge is named `<prefix><hash>` (networks.bridge_name, one prefix per
installation), so two rules cover every network of this installation, present and future:

- `DOCKER-USER -i <prefix>+ -j SY-<id>-FWD`: traffic routed through the host (to the LAN, the
  metadata address 169.254.169.254, other private or special ranges) is rejected, except to
  SWITCHYARD_EGRESS_ALLOW and to public addresses; traffic between containers of one app
  network is left to Docker (its isolation rules keep apps apart);
- `INPUT -i <prefix>+ -j SY-<id>-IN`: traffic to the host's own addresses (its services on any
  interface, the bridge gateways) is rejected, except replies of connections the host opened
  (HAProxy and the health probes reach containers from the host), HAProxy's HTTP and HTTPS ports
  (an app calling another by its public name) and SWITCHYARD_EGRESS_ALLOW.

DNS: Docker's embedded resolver (127.0.0.11 in a container) answers inside the container's network
namespace and forwards to the host's nameservers from there, so a nameserver on a private or
loopback address (a LAN resolver, dnsmasq on a bridge) would meet the rules above. Both chains let
through udp and tcp port 53 to exactly the nameservers dockerd uses (`nameservers()`), nothing else
on those addresses.

Chains are replaced and the jumps put first in their chain in one transaction (iptables-restore
--noflush); `ensure()` runs at every start (manage.py egress --apply, the worker's start), finds what
is missing (a rule deleted by hand, a Docker restart that reordered DOCKER-USER) and repairs it.
Chain names carry a hash of SWITCHYARD_INSTANCE: test runs side by side never touch each
other's rules. IPv6 is not enabled on app networks, so IPv4 rules cover them.
"""
import fcntl
import hashlib
import ipaddress
import re
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from django.conf import settings

from deployments.dockerd import networks

TIMEOUT = 20  # seconds for one iptables call (it waits up to 5 s for the xtables lock)
# Not public (RFC 6890 special-purpose ranges): the host's LAN, the cloud metadata address,
# carrier-grade NAT, documentation, benchmarking, multicast and reserved space.
NOT_PUBLIC = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
              "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")
# dockerd reads /etc/resolv.conf, unless its only nameserver is systemd-resolved's stub: then the
# file systemd-resolved writes with the real upstream servers (moby: libnetwork/resolvconf.Path).
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLVED_CONF = Path("/run/systemd/resolve/resolv.conf")


class EgressError(Exception):
    """iptables is missing, not allowed, or refused a rule; the message says which."""


@dataclass(frozen=True)
class Rules:
    """The rules this installation needs, as iptables argument lists."""
    forward_chain: str
    input_chain: str
    forward: tuple[tuple[str, ...], ...]
    input: tuple[tuple[str, ...], ...]
    jumps: tuple[tuple[str, tuple[str, ...]], ...]  # (built-in chain, rule)


def expected() -> Rules:
    digest = hashlib.sha1(settings.SWITCHYARD["INSTANCE"].encode()).hexdigest()[:8]
    forward_chain, input_chain = f"SY-{digest}-FWD", f"SY-{digest}-IN"
    prefix = networks.bridge_prefix()
    allowed = [str(n) for n in settings.SWITCHYARD["EGRESS_ALLOW"] if n.version == 4]
    replies = ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN")
    forward = [replies, ("-o", f"{prefix}+", "-j", "RETURN")]  # within an app network: Docker decides
    forward += [("-d", cidr, "-j", "RETURN") for cidr in allowed]
    forward += _dns_rules()
    forward += [("-d", cidr, "-j", "REJECT", "--reject-with", "icmp-port-unreachable") for cidr in NOT_PUBLIC]
    # HAProxy's own ports stay open: an app may call another app (or the panel) by its public name
    # when that name points at this host. HAProxy answers there as it answers anyone.
    ports = sorted({settings.SWITCHYARD["HTTP_BIND"][1], settings.SWITCHYARD["HTTPS_BIND"][1]})
    inbound = [replies, ("-p", "tcp", "-m", "multiport", "--dports", ",".join(map(str, ports)), "-j", "RETURN"),
               *[("-d", cidr, "-j", "RETURN") for cidr in allowed], *_dns_rules(),
               ("-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"),
               ("-j", "REJECT", "--reject-with", "icmp-port-unreachable")]
    instance = re.sub(r"[^\w.-]", "-", settings.SWITCHYARD["INSTANCE"], flags=re.ASCII)  # into iptables-restore's input
    comment = ("-m", "comment", "--comment", f"switchyard {instance}"[:200])
    interfaces = [f"{prefix}+"] + [b for b in _bridges() if not b.startswith(prefix)]
    jumps = [(chain, ("-i", interface, *comment, "-j", target)) for interface in interfaces
             for chain, target in (("DOCKER-USER", forward_chain), ("INPUT", input_chain))]
    return Rules(forward_chain, input_chain, tuple(forward), tuple(inbound), tuple(jumps))


def _dns_rules() -> list[tuple[str, ...]]:
    """DNS to dockerd's nameservers: the port and protocols a resolver answers on, nothing else.
    `-m udp`/`-m tcp` spelled out, as `iptables -S` prints them back."""
    return [("-d", f"{address}/32", "-p", protocol, "-m", protocol, "--dport", "53", "-j", "RETURN")
            for address in nameservers() for protocol in ("udp", "tcp")]


def nameservers() -> list[str]:
    """The IPv4 nameservers dockerd hands containers' queries to, read as dockerd reads them
    (SWITCHYARD_EGRESS_RESOLV_CONF: the host's /etc/resolv.conf unless set)."""
    found = _resolv_conf_nameservers(Path(settings.SWITCHYARD["EGRESS_RESOLV_CONF"]))
    if found == [ipaddress.ip_address(SYSTEMD_RESOLVED_STUB)]:
        found = _resolv_conf_nameservers(SYSTEMD_RESOLVED_CONF)
    return [str(address) for address in found if address.version == 4]


def _resolv_conf_nameservers(path: Path) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """`nameserver` lines' addresses, in order, once each; a missing file has none (dockerd then
    gives containers public resolvers, which the rules let through anyway)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and (address := _address(words[1])) and address not in found:
            found.append(address)
    return found


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _bridges() -> list[str]:
    try:
        return networks.instance_bridges()
    except Exception:  # Docker down: the prefix rule still covers every network made from now on
        return []


def missing(rules: Rules | None = None) -> list[str]:
    """What is not in place, one line each (empty: all is)."""
    rules = rules or expected()
    problems = []
    for chain, wanted in ((rules.forward_chain, rules.forward), (rules.input_chain, rules.input)):
        present = _chain_rules(chain)
        if present is None:
            problems.append(f"chain {chain} is missing")
        elif present != [_normal(chain, rule) for rule in wanted]:
            problems.append(f"chain {chain} differs from what it must hold ({len(present)} rules, {len(wanted)} expected)")
    for chain, rule in rules.jumps:
        if _chain_rules(chain) is None:
            problems.append(f"chain {chain} is missing (is dockerd running?)")
        elif _iptables("-C", chain, *rule, check=False).returncode != 0:
            problems.append(f"the jump from {chain} for {rule[1]} is missing")
        elif not _ahead_of_others(chain, rule):
            problems.append(f"the jump from {chain} for {rule[1]} comes after rules that are not Switchyard's")
    return problems


def ensure() -> list[str]:
    """Install or repair the rules; returns what was wrong before (empty: nothing to do).
    Off (SWITCHYARD_EGRESS_RULES=false): nothing is done."""
    if not settings.SWITCHYARD["EGRESS_RULES"]:
        return []
    with rules_lock():
        rules = expected()
        problems = missing(rules)
        if problems:
            _restore(rules)
            still = missing(rules)
            if still:
                raise EgressError("egress rules could not be installed: " + "; ".join(still))
        return problems


def remove() -> None:
    """Take this installation's rules out (the test suite, at its end)."""
    with rules_lock():
        rules = expected()
        for chain, rule in rules.jumps:
            while _iptables("-C", chain, *rule, check=False).returncode == 0:
                _iptables("-D", chain, *rule)
        for chain in (rules.forward_chain, rules.input_chain):
            if _chain_rules(chain) is not None:
                _iptables("-F", chain)
                _iptables("-X", chain)


def _restore(rules: Rules) -> None:
    """Both chains replaced and every jump put first, in one transaction: never a moment with half
    of the rules, or with a jump taken out to be put back first (a build step's request to the LAN
    got through such a moment while another process repaired the rules)."""
    lines = ["*filter", f":{rules.forward_chain} - [0:0]", f":{rules.input_chain} - [0:0]"]
    lines += [_line("-A", rules.forward_chain, *rule) for rule in rules.forward]
    lines += [_line("-A", rules.input_chain, *rule) for rule in rules.input]
    for chain, rule in rules.jumps:  # each copy out (duplicates, or not first), then one in first
        lines += [_line("-D", chain, *rule)] * _copies(chain, rule)
        lines.append(_line("-I", chain, "1", *rule))
    _run(["iptables-restore", "-w", "5", "--noflush"], input="\n".join(lines + ["COMMIT", ""]))


def _line(*words: str) -> str:
    """One iptables-restore line; a word with spaces (the comment) in quotes."""
    return " ".join(f'"{word}"' if " " in word else word for word in words)


def _copies(chain: str, rule: tuple[str, ...]) -> int:
    """How many times exactly this jump is in the chain, as `iptables -S` prints it: a `-D` for
    a copy that differs (another comment, a rule added by hand) would fail the whole transaction."""
    printed = _line("-A", chain, *rule)
    return sum(1 for line in _chain_rules(chain) or [] if line == printed)


def _chain_rules(chain: str) -> list[str] | None:
    result = _iptables("-S", chain, check=False)
    if result.returncode != 0:
        return None
    return [line for line in result.stdout.splitlines() if line.startswith("-A ")]


def _normal(chain: str, rule: tuple[str, ...]) -> str:
    """A rule as `iptables -S` prints it (addresses with their prefix length)."""
    words = list(rule)
    for index, word in enumerate(words[:-1]):
        if word == "-d":
            words[index + 1] = str(ipaddress.ip_network(words[index + 1]))
    return " ".join(("-A", chain, *words))


def _ahead_of_others(chain: str, rule: tuple[str, ...]) -> bool:
    """Only jumps of Switchyard installations (by their comment) may come before this one: a rule
    of another kind ahead of it (an ACCEPT, Docker's RETURN) would let traffic by unchecked."""
    target = rule[-1]
    for line in _chain_rules(chain) or []:
        if f"-i {rule[1]} " in line and line.endswith(f"-j {target}"):
            return True
        if '--comment "switchyard ' not in line:
            return False
    return False


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["iptables", "-w", "5", *args], check=check)


def _run(command: list[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise EgressError(f"{command[0]} is not installed (Debian package iptables); or set "
                          "SWITCHYARD_EGRESS_RULES=false if the host's firewall does this") from None
    except subprocess.TimeoutExpired:
        raise EgressError(f"{command[0]} did not finish within {TIMEOUT}s") from None
    if check and result.returncode != 0:
        raise EgressError(f"{' '.join(command[:4])} failed: {result.stderr.strip() or result.returncode}")
    return result


@contextmanager
def rules_lock() -> Iterator[None]:
    """The workers of one installation start together: one of them at a time checks and repairs
    (a file lock in DATA_DIR, so a process editing the rules by hand can hold it too)."""
    path = Path(settings.DATA_DIR) / "egress.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
