"""Hide an app's env var values in any text shown to people: deployment logs, live container output.

An app may print its environment (or a crash may), and the viewer role is meant to see output,
not secrets."""
import re
from collections.abc import Iterable

MASK = "****"
# Shorter values ("1", "on", "dev") would mask ordinary words and tell nothing worth hiding.
MIN_SECRET_LENGTH = 4


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a value that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


# scheme://user:password@ (a token pasted into a repository URL): the password part; and over
# http(s) a user name alone too (https://TOKEN@github.com/... is how tokens are given there).
URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:)(?P<password>[^/@\s]*)@")
HTTP_USER = re.compile(r"(?P<head>\bhttps?://)(?P<user>[^/@\s:]+)@", re.IGNORECASE)


def hide_url_passwords(text: str) -> str:
    """Every `scheme://user:secret@` in `text` as `scheme://user:****@`, and `https://token@` as
    `https://****@` (git's own messages may quote the URL)."""
    text = URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return HTTP_USER.sub(lambda m: f"{m['head']}{MASK}@" if m["user"] != MASK else m[0], text)


def without_password(url: str) -> str:
    """A repository URL as shown to people (app page, API, audit log, deployment log): a
    password or token in it is masked; a user name alone (git@, oauth2@) is kept."""
    return hide_url_passwords(url)


def is_masked_form_of(shown: str, stored: str) -> bool:
    """`shown` is what people were shown of `stored` (sent back unchanged by a form or a client)."""
    return shown != stored and shown == without_password(stored)
