"""Hide an app's env var values in any text shown to people: deployment logs, live container output.

An app may print its environment (or a crash may), and the viewer role is meant to see output,
not secrets."""
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
