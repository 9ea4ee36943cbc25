"""Django's own settings: the secret key, hosts, apps, middleware, templates, the database, static
files, login pages, logging."""
import secrets

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from panel.env import env_bool, env_str
from panel.settings.paths import BASE_DIR, DATA_DIR


def _secret_key() -> str:
    """The env var wins; otherwise a key generated once and kept in the data dir,
    so sessions and encrypted values survive restarts without any set-up."""
    configured = env_str("SWITCHYARD_SECRET_KEY", "")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("SWITCHYARD_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in env_str("SWITCHYARD_ALLOWED_HOSTS", "*").split(",") if h.strip()]
# Origins besides the panel's own that may post forms and open WebSockets, e.g. https://panel.example.com
# when a proxy rewrites the Host header.
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("SWITCHYARD_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside the session and CSRF middleware, so it sees the cookies they set.
    "panel.middleware.SecureCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last of those that act, as django-axes asks: a lock-out becomes its 429 page
    "panel.middleware.OneThreadMiddleware",  # innermost: the chain runs in one thread under ASGI (see there)
]

ROOT_URLCONF = "panel.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "deployments.context_processors.services",
            ],
        },
    },
]
WSGI_APPLICATION = "panel.wsgi.application"
ASGI_APPLICATION = "panel.asgi.application"


def _database() -> dict:
    url = env_str("DATABASE_URL", "")
    if not url:
        # WAL lets the panel read while the worker writes; IMMEDIATE transactions take the
        # write lock up front so two writers queue on busy_timeout instead of failing.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "switchyard.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        }
    try:
        return dj_database_url.parse(url, conn_max_age=60)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL ({error}); e.g. postgres://user:pw@host/db")


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SWITCHYARD_LOG_LEVEL", "INFO")},
}
