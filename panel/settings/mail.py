"""E-mail for deploy events, through Django's backends (SMTP unless told otherwise)."""
from panel.env import env_bool, env_int, env_str
from panel.settings.paths import DATA_DIR

EMAIL_BACKEND = env_str("SWITCHYARD_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = env_str("SWITCHYARD_EMAIL_FILE_PATH", str(DATA_DIR / "mail"))  # the file backend's
EMAIL_HOST = env_str("SWITCHYARD_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("SWITCHYARD_EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("SWITCHYARD_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("SWITCHYARD_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("SWITCHYARD_EMAIL_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("SWITCHYARD_EMAIL_FROM", "switchyard@localhost")
