"""Egress rules: what app containers and build steps may reach (nftables, the host adapter).

Every app network's bridge is named `<prefix><hash>` (networks.bridge_name, one prefix per
installation), so one table of this installation's own covers every network of it, present and
future: `ip switchyard_<id>`, with a chain on the forward hook and one on the input hook, each
jumping for `iifname "<prefix>*"` to

- `egress_forward`: traffic routed through the host (to the LAN, the metadata address
  169.254.169.254, other private or special ranges, another app's network) is rejected, except
  to SWITCHYARD_EGRESS_ALLOW and to public addresses; traffic between the containers of one
  network is left to Docker, a rule per bridge, which ensure() adds as each network is made
  (dockerd/network_events.py), before any container joins it;
- `egress_input`: traffic to the host's own addresses (its services on any interface, the bridge
  gateways) is rejected, except replies of connections the host opened (HAProxy and the health
  probes reach containers from the host), HAProxy's HTTP and HTTPS ports (an app calling another
  by its public name) and SWITCHYARD_EGRESS_ALLOW.

Why a table of its own and not Docker's DOCKER-USER chain: dockerd (20.10) takes the FORWARD
chain's jump to DOCKER-USER out and puts it back first at every network it creates, and puts the
new bridge's ACCEPT rules first meanwhile; for those milliseconds every container's traffic to
the LAN was accepted before DOCKER-USER was reached (a CI run saw an app container fetch from a
LAN host). Its isolation chains, which kept apps apart, are jumped to the same way, so the table
rejects traffic between two bridges itself. Docker never touches this table. Its base chains run before iptables' (priority
filter - 10); their `return` lets a packet on to the host's other rules, their reject ends it.

DNS: Docker's embedded resolver (127.0.0.11 in a container) answers inside the container's network
namespace and forwards to the host's nameservers from there, so a nameserver on a private or
loopback address (a LAN resolver, dnsmasq on a bridge) would meet the rules above. Both chains let
through udp and tcp port 53 to exactly the nameservers dockerd uses (`nameservers()`), nothing else
on those addresses.

The table is replaced in one nft transaction: never a moment with half of the rules. Each rule
carries a comment naming its place and a hash of its text, so `missing()` finds a rule deleted or
changed by hand (or one the settings no longer give) by comparing comments. `ensure()` runs at
every start (manage.py egress --apply, the worker's start) and at every periodic reconcile, and
repairs what it finds. Table names carry a hash of SWITCHYARD_INSTANCE: test runs side by side
never touch each other's rules. IPv6 is not enabled on app networks, so IPv4 rules cover them.
"""
import fcntl
import hashlib
import ipaddress
import json
import re
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from django.conf import settings

from deployments.dockerd import networks
from deployments.engine import egress_iptables

TIMEOUT = 20  # seconds for one nft call
FAMILY = "ip"
PRIORITY = -10  # before iptables' filter chains (priority filter, 0)
FORWARD_CHAIN, INPUT_CHAIN = "egress_forward", "egress_input"
# Not public (RFC 6890 special-purpose ranges): the host's LAN, the cloud metadata address,
# carrier-grade NAT, documentation, benchmarking, multicast and reserved space.
NOT_PUBLIC = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
              "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")
# dockerd reads /etc/resolv.conf, unless its only nameserver is systemd-resolved's stub: then the
# file systemd-resolved writes with the real upstream servers (moby: libnetwork/resolvconf.Path).
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLVED_CONF = Path("/run/systemd/resolve/resolv.conf")
BRIDGE_NAME = re.compile(r"^[\w.-]{1,15}$", re.ASCII)  # what may go between quotes in a rule


class EgressError(Exception):
    """nft is missing, not allowed, or refused the table; the message says which."""


@dataclass(frozen=True)
class Chain:
    """A chain of the table: `hook` is "" for one reached only by a jump."""
    name: str
    hook: str
    rules: tuple[str, ...]

    def comments(self) -> tuple[str, ...]:
        """Each rule's comment: its place and a hash of its text (how missing() recognises it)."""
        return tuple(f"sy {index} {hashlib.sha1(f'{self.name}|{rule}'.encode()).hexdigest()[:12]}"
                     for index, rule in enumerate(self.rules))


@dataclass(frozen=True)
class Rules:
    """The table this installation needs."""
    table: str
    chains: tuple[Chain, ...]

    def script(self) -> str:
        """An nft script that replaces the table in one transaction (made first, so that the
        delete never fails); chains reached by a jump come before the chains that jump."""
        lines = [f"table {FAMILY} {self.table}", f"delete table {FAMILY} {self.table}", f"table {FAMILY} {self.table} {{"]
        for chain in self.chains:
            lines.append(f"  chain {chain.name} {{")
            if chain.hook:
                lines.append(f"    type filter hook {chain.hook} priority {PRIORITY}; policy accept;")
            lines += [f'    {rule} comment "{comment}"' for rule, comment in zip(chain.rules, chain.comments())]
            lines.append("  }")
        return "\n".join(lines + ["}", ""])


def expected() -> Rules:
    digest = hashlib.sha1(settings.SWITCHYARD["INSTANCE"].encode()).hexdigest()[:8]
    prefix = networks.bridge_prefix()
    allowed = [f"ip daddr {network} return" for network in settings.SWITCHYARD["EGRESS_ALLOW"] if network.version == 4]
    replies = "ct state established,related return"
    bridges = [name for name in _bridges() if BRIDGE_NAME.match(name)]
    dns = _dns_rules()  # resolv.conf read once for both chains
    # Within one bridge (an app's network, a release's): Docker decides. To another bridge of
    # this installation: rejected here, not by Docker's isolation chains alone, whose jump dockerd
    # also takes out and puts back at every network it makes. A TCP reset, not an ICMP error,
    # for TCP: the kernel sends about one ICMP error a second, and a connection refused without
    # one waits for its SYN to be sent again.
    forward = [replies, *[f'iifname "{name}" oifname "{name}" return' for name in bridges],
               *_rejected([f'oifname "{name}"' for name in [f"{prefix}*", *bridges]]), *allowed, *dns,
               *_rejected([f"ip daddr {cidr}" for cidr in NOT_PUBLIC])]
    # HAProxy's own ports stay open: an app may call another app (or the panel) by its public name
    # when that name points at this host. HAProxy answers there as it answers anyone.
    ports = sorted({settings.SWITCHYARD["HTTP_BIND"][1], settings.SWITCHYARD["HTTPS_BIND"][1]})
    inbound = [replies, f"tcp dport {{ {', '.join(map(str, ports))} }} return", *allowed, *dns,
               "meta l4proto tcp reject with tcp reset", "reject with icmp type port-unreachable"]
    interfaces = [f"{prefix}*"] + [name for name in bridges if not name.startswith(prefix)]
    return Rules(f"switchyard_{digest}", (
        Chain(FORWARD_CHAIN, "", tuple(forward)), Chain(INPUT_CHAIN, "", tuple(inbound)),
        Chain("forward", "forward", tuple(f'iifname "{name}" jump {FORWARD_CHAIN}' for name in interfaces)),
        Chain("input", "input", tuple(f'iifname "{name}" jump {INPUT_CHAIN}' for name in interfaces))))


def _rejected(matches: list[str]) -> list[str]:
    """Each match rejected: TCP with a reset, the rest with an ICMP error."""
    return [*[f"{match} meta l4proto tcp reject with tcp reset" for match in matches],
            *[f"{match} reject with icmp type port-unreachable" for match in matches]]


def _dns_rules() -> list[str]:
    """DNS to dockerd's nameservers: the port and protocols a resolver answers on, nothing else."""
    return [f"ip daddr {address} {protocol} dport 53 return" for address in nameservers() for protocol in ("udp", "tcp")]


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
    """Every bridge of this installation's networks. Docker must answer: rules made without them
    would cut the containers of each network off from each other."""
    try:
        return networks.instance_bridges()
    except Exception as error:
        raise EgressError(f"cannot list this installation's Docker networks (is dockerd running?): {error}") from None


def missing(rules: Rules | None = None) -> list[str]:
    """What is not in place, one line each (empty: all is)."""
    rules = rules or expected()
    earlier = ["the iptables rules of an earlier version are still there"] \
        if egress_iptables.earlier_rules_present(settings.SWITCHYARD["INSTANCE"]) else []
    listed = _listing(rules.table)
    if listed is None:
        return [f"table {FAMILY} {rules.table} is missing", *earlier]
    chains, comments = listed
    problems = earlier
    for chain in rules.chains:
        if chain.name not in chains:
            problems.append(f"chain {chain.name} is missing")
        elif chains[chain.name] != ((chain.hook, PRIORITY, "accept") if chain.hook else ("", None, None)):
            problems.append(f"chain {chain.name} is not on the {chain.hook or 'no'} hook as it must be")
        elif chain.hook:
            problems += _jump_problems(chain, comments.get(chain.name, []))
        elif comments.get(chain.name, []) != list(chain.comments()):
            problems.append(f"chain {chain.name} differs from what it must hold "
                            f"({len(comments.get(chain.name, []))} rules, {len(chain.rules)} expected)")
    return problems


def _jump_problems(chain: Chain, present: list[str]) -> list[str]:
    """A base chain's jumps: each there exactly once, and nothing else."""
    problems = [f"the jump from the {chain.hook} hook for {rule.split()[1]} is missing"
                for rule, comment in zip(chain.rules, chain.comments()) if present.count(comment) != 1]
    if not problems and present != list(chain.comments()):
        problems.append(f"chain {chain.name} holds rules that are not Switchyard's")
    return problems


def _listing(table: str) -> tuple[dict[str, tuple], dict[str, list[str]]] | None:
    """The table as the kernel has it: {chain: (hook, priority, policy)} and {chain: rule
    comments in order}; None if there is no such table."""
    result = _run(["nft", "-j", "list", "table", FAMILY, table], check=False)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise EgressError(f"nft list table failed: {result.stderr.strip() or result.returncode}")
    chains, comments = {}, {}
    for item in json.loads(result.stdout)["nftables"]:
        if "chain" in item:
            chain = item["chain"]
            chains[chain["name"]] = (chain.get("hook", ""), chain.get("prio"), chain.get("policy"))
        elif "rule" in item:
            comments.setdefault(item["rule"]["chain"], []).append(item["rule"].get("comment", ""))
    return chains, comments


def ensure() -> list[str]:
    """Install or repair the rules; returns what was wrong before (empty: nothing to do).
    Off (SWITCHYARD_EGRESS_RULES=false): nothing is done."""
    if not settings.SWITCHYARD["EGRESS_RULES"]:
        return []
    with rules_lock():
        rules = expected()
        problems = missing(rules)
        if problems:
            _run(["nft", "-f", "-"], input=rules.script())
            still = missing(rules)
            if still:
                raise EgressError("egress rules could not be installed: " + "; ".join(still))
            _remove_earlier_rules()
        return problems


def remove() -> None:
    """Take this installation's rules out (the test suite, at its end)."""
    with rules_lock():
        table = expected().table
        if _listing(table) is not None:
            _run(["nft", "delete", "table", FAMILY, table])
        _remove_earlier_rules()


def _remove_earlier_rules() -> None:
    """Once the table is in place (egress_iptables.py says why)."""
    problem = egress_iptables.remove_earlier_rules(settings.SWITCHYARD["INSTANCE"])
    if problem:
        raise EgressError(problem)


def _run(command: list[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise EgressError(f"{command[0]} is not installed (Debian package nftables); or set "
                          "SWITCHYARD_EGRESS_RULES=false if the host's firewall does this") from None
    except subprocess.TimeoutExpired:
        raise EgressError(f"{command[0]} did not finish within {TIMEOUT}s") from None
    if check and result.returncode != 0:
        raise EgressError(f"{' '.join(command[:4])} failed: {result.stderr.strip()[-500:] or result.returncode}")
    return result


@contextmanager
def rules_lock() -> Iterator[None]:
    """The workers of one installation start together: one of them at a time checks and repairs
    (a file lock in DATA_DIR, so a process editing the rules by hand can hold it too)."""
    path = Path(settings.DATA_DIR) / "egress.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
