"""Switchyard settings: every value comes from an environment variable (see docs/settings.md).

DJANGO_SETTINGS_MODULE=panel.settings: this package, composed of one module per concern, in the
order each needs the one before (paths first; security after Switchyard's own, whose binds it checks).
"""
from panel.settings.paths import *  # noqa: F401,F403
from panel.settings.core import *  # noqa: F401,F403
from panel.settings.switchyard import *  # noqa: F401,F403
from panel.settings.security import *  # noqa: F401,F403
from panel.settings.broker import *  # noqa: F401,F403
from panel.settings.mail import *  # noqa: F401,F403
