"""The iptables rules earlier versions of Switchyard kept egress with, taken out once the
nftables table (egress.py) is in place: chains `SY-<id>-FWD` and `SY-<id>-IN`, reached from
DOCKER-USER and INPUT. Left in, they would still reject what SWITCHYARD_EGRESS_ALLOW now allows."""
import hashlib
import subprocess

TIMEOUT = 20  # seconds for one iptables call (it waits up to 5 s for the xtables lock)


def _chains(instance: str) -> tuple[str, str]:
    digest = hashlib.sha1(instance.encode()).hexdigest()[:8]
    return f"SY-{digest}-FWD", f"SY-{digest}-IN"


def _saved() -> list[str]:
    """The filter table as iptables-save prints it; empty without iptables."""
    try:
        saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, timeout=TIMEOUT)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return saved.stdout.splitlines()


def earlier_rules_present(instance: str) -> bool:
    lines = _saved()
    return any(line.startswith(f":{chain} ") for line in lines for chain in _chains(instance))


def remove_earlier_rules(instance: str) -> str:
    """Every jump to this instance's old chains, then the chains, in one iptables-restore
    transaction; nothing to do (and no iptables needed) if the chains are not there. Returns ""
    or why they could not be removed."""
    lines = _saved()  # no iptables: no earlier rules either
    present = [chain for chain in _chains(instance) if any(line.startswith(f":{chain} ") for line in lines)]
    if not present:
        return ""
    jumps = [line for line in lines if line.startswith("-A ") and line.split()[-1] in present
             and line.split()[1] not in present]
    script = ["*filter", *("-D" + jump[2:] for jump in jumps), *(f"-F {chain}" for chain in present),
              *(f"-X {chain}" for chain in present), "COMMIT", ""]
    result = subprocess.run(["iptables-restore", "-w", "5", "--noflush"], input="\n".join(script),
                            capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        return (f"the earlier iptables rules ({', '.join(present)}) could not be removed: "
                f"{result.stderr.strip()[-300:] or result.returncode}")
    return ""
