"""Switchyard settings: every value comes from an environment variable (see README)."""
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from panel.env import env_bind, env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("SWITCHYARD_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


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

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("SWITCHYARD_QUEUE", "switchyard")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
}

# What Switchyard itself runs and where.
SWITCHYARD = {
    # Label on every container, image and network this installation creates; a test run
    # uses its own, so it never touches the containers of a running panel.
    "INSTANCE": env_str("SWITCHYARD_INSTANCE", "main"),
    "DOCKER_NETWORK": env_str("SWITCHYARD_DOCKER_NETWORK", "switchyard"),
    "HTTP_BIND": env_bind("SWITCHYARD_HTTP_BIND", "127.0.0.1:8080"),
    "PANEL_BIND": env_bind("SWITCHYARD_PANEL_BIND", "127.0.0.1:8000"),
    "HAPROXY_DIR": DATA_DIR / "haproxy",
    "REPO_CACHE_DIR": DATA_DIR / "repos",
    "GIT_TIMEOUT": env_int("SWITCHYARD_GIT_TIMEOUT", 120, minimum=1),
    "BUILD_TIMEOUT": env_int("SWITCHYARD_BUILD_TIMEOUT", 1800, minimum=1),
    "DRAIN_TIMEOUT": env_int("SWITCHYARD_DRAIN_TIMEOUT", 30, minimum=0),
    "KEEP_IMAGES": env_int("SWITCHYARD_KEEP_IMAGES", 5, minimum=1),
    "HEARTBEAT_TIMEOUT": env_int("SWITCHYARD_HEARTBEAT_TIMEOUT", 90, minimum=10),
    # Watch window a new app gets (seconds after the switch; each app can change it).
    "DEFAULT_WATCH_WINDOW": env_int("SWITCHYARD_DEFAULT_WATCH_WINDOW", 30, maximum=3600),
    # Confinement a new app gets (each app can change its own; see README "Security").
    "DEFAULT_MEMORY_MB": env_int("SWITCHYARD_DEFAULT_MEMORY_MB", 512, minimum=16, maximum=65536),
    "DEFAULT_CPUS": env_float("SWITCHYARD_DEFAULT_CPUS", 1.0, minimum=0.05, maximum=64),
    "DEFAULT_PIDS": env_int("SWITCHYARD_DEFAULT_PIDS", 256, minimum=16, maximum=32768),
    # Limits of a build's RUN steps (all apps).
    "BUILD_MEMORY_MB": env_int("SWITCHYARD_BUILD_MEMORY_MB", 2048, minimum=64, maximum=65536),
    # Lines stored per deployment log; the rest is cut with a line saying so.
    "MAX_LOG_LINES": env_int("SWITCHYARD_MAX_LOG_LINES", 50000, minimum=100),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SWITCHYARD_LOG_LEVEL", "INFO")},
}
