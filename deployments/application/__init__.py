"""The application layer: what the panel, the API, the CLI and the admin do to apps, one module
per aggregate. Input is validated completely before anything is written, so bad input changes
nothing; refusals are the exceptions of errors.py, mapped once for the API (api.py's exception
handlers) and once for the panel (panel_actions.py)."""
