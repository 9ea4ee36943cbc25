"""The application layer's refusals. The API maps each to a status once (api.py's exception
handlers: 400, 429, 409); the panel shows each as a message or as form errors (panel_actions.py);
the CLI prints them as its error."""


class InvalidInput(Exception):
    """Bad input; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


class TooSoon(InvalidInput):
    """Asked again before the administrator's minimum interval passed (API: 429)."""


class NotPossible(Exception):
    """The action cannot be done in the current state; the message says why."""
