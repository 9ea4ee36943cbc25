"""ACME HTTP-01 challenge entries: HAProxy answers GET /.well-known/acme-challenge/TOKEN with the
key authorization, on every host, before any app sees the request. Map file first, then the
running HAProxy; the entries live only there, for the minutes an order takes."""
import re

from deployments.haproxy import files, runtime_api
from deployments.haproxy.config import Paths, UnsafeValue, map_text, parse_map

CHALLENGE_WORD = re.compile(r"[A-Za-z0-9_.-]{1,400}")


def publish(location: Paths, token: str, key_authorization: str) -> None:
    if not (CHALLENGE_WORD.fullmatch(token) and CHALLENGE_WORD.fullmatch(key_authorization)):
        raise UnsafeValue("an ACME token or key authorization is not one word of base64url")
    _change(location, lambda entries: [*(e for e in entries if e[0] != token), (token, key_authorization)],
            f"add map {{map}} {token} {key_authorization}")


def withdraw(location: Paths, token: str) -> None:
    if not CHALLENGE_WORD.fullmatch(token):
        return
    _change(location, lambda entries: [e for e in entries if e[0] != token], f"del map {{map}} {token}")


def _change(location: Paths, change, command: str) -> None:
    files.atomic_write(location.challenges_map, map_text(change(parse_map(files.read(location.challenges_map)))))
    try:
        runtime_api.send(location.admin_socket, command.format(map=location.challenges_map))
    except runtime_api.HAProxyUnavailable:
        pass  # a starting HAProxy reads the file
