"""The egress table (deployments/engine/egress.py) as the kernel holds it, and changes to it
made by hand, as an administrator (or an accident) would make them with nft."""
import json
import subprocess

from deployments.engine import egress


def rules_of(rules: egress.Rules) -> list[dict]:
    """The table's rules as `nft -j` lists them (empty if there is no table)."""
    listed = subprocess.run(["nft", "-j", "list", "table", egress.FAMILY, rules.table],
                            capture_output=True, text=True, timeout=20)
    if listed.returncode != 0:
        return []
    return [item["rule"] for item in json.loads(listed.stdout)["nftables"] if "rule" in item]


def jumps_missing(rules: egress.Rules) -> list[str]:
    """The jumps of `rules` (base chains' rules, by comment) not in the table now."""
    present = {(rule["chain"], rule.get("comment")) for rule in rules_of(rules)}
    return [f"{chain.hook}: {rule}" for chain in rules.chains if chain.hook
            for rule, comment in zip(chain.rules, chain.comments()) if (chain.name, comment) not in present]


def delete_jump(rules: egress.Rules, hook: str) -> None:
    """The first jump from the base chain on `hook`, deleted by its handle."""
    chain = next(chain for chain in rules.chains if chain.hook == hook)
    handle = next(rule["handle"] for rule in rules_of(rules) if rule["chain"] == chain.name)
    subprocess.run(["nft", "delete", "rule", egress.FAMILY, rules.table, chain.name, "handle", str(handle)],
                   check=True, capture_output=True, timeout=20)


def add_rule(rules: egress.Rules, chain: str, rule: str) -> None:
    subprocess.run(["nft", "add", "rule", egress.FAMILY, rules.table, chain, *rule.split()],
                   check=True, capture_output=True, timeout=20)
