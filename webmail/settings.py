"""Django settings for Correio, read from the environment (see ARCHITECTURE.md, "Settings").

Every setting has a working embedded default: SQLite under ``var/``, no Redis (Celery's filesystem
transport and in-process change events), listeners on loopback development ports.
"""

import secrets
import sysconfig
from pathlib import Path

import dj_database_url

from mailcore.private import create_private, private_dir
from webmail.env import (
    env_addr,
    env_bool,
    env_host_map,
    env_int,
    env_int_list,
    env_list,
    env_secret,
    env_size,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# A source tree has templates/ and static/ beside the packages; an installed copy (pip install .)
# has them under <prefix>/share/correio (pyproject.toml's data-files), and keeps its data in
# ./var unless CORREIO_VAR_DIR says otherwise.
_SOURCE_TREE = (BASE_DIR / "templates").is_dir()
ASSETS_DIR = BASE_DIR if _SOURCE_TREE else Path(sysconfig.get_path("data")) / "share" / "correio"
VAR_DIR = Path(env_str("CORREIO_VAR_DIR", str((BASE_DIR if _SOURCE_TREE else Path.cwd()) / "var")))
private_dir(VAR_DIR)


def _default_secret_key() -> str:
    """A random key kept in var/ so sessions survive restarts without any configuration."""
    path = VAR_DIR / "secret_key"
    create_private(path, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY", "") or _default_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "mailcore",
    "webmail",
]

MIDDLEWARE = [
    "webmail.metrics.request_metrics",
    "webmail.middleware.trusted_proxy_scheme",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "webmail.urls"
WSGI_APPLICATION = "webmail.wsgi.application"
ASGI_APPLICATION = "webmail.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ASSETS_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------
# SQLite: WAL journal with synchronous=FULL so a commit is on disk before SMTP says 250, and
# IMMEDIATE transactions so concurrent writers queue on the lock instead of failing to upgrade.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
        " PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
    ),
}
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    # Parallel test runs against one server each need their own test database.
    if env_str("CORREIO_TEST_DATABASE", ""):
        DATABASES["default"]["TEST"] = {"NAME": env_str("CORREIO_TEST_DATABASE", "")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "correio.sqlite3",
            "OPTIONS": dict(SQLITE_OPTIONS),
            # A file, not memory: listener threads in tests need their own connections to it.
            "TEST": {"NAME": str(VAR_DIR / "test-correio.sqlite3")},
        }
    }
# Keep connections between requests and listener service calls (call_service closes only stale
# ones): with the default of 0 every SMTP command on SQLite reopened the file and re-ran the
# PRAGMAs above, which halved intake throughput.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
# SQLite writers queue on a lock handed over at once instead of sleeping in SQLite's busy
# handler (1 to 100 ms a retry), which made commits 20-120 ms under concurrent writes.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "mailcore.db.sqlite3"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The listeners call services from a thread pool many times a second; with Django's default
# CONN_MAX_AGE=0 every call closed and reopened its SQLite connection (and reran the PRAGMAs).
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)

# --- Redis, Celery, events ------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    # Longer than the longest delivery attempt, so a slow attempt is never handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth and sessions ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
# Argon2id at OWASP's parameters (mailcore/hashers.py); older PBKDF2 hashes still verify and
# are re-hashed with Argon2id at the next successful login.
PASSWORD_HASHERS = [
    "mailcore.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Every sign-in, the admin's included, goes through the shared throttle.
AUTHENTICATION_BACKENDS = ["webmail.auth_backend.ThrottledModelBackend"]
# Django's database sessions with a cheaper sign-in (one row written, no fsync): webmail/sessions.py.
SESSION_ENGINE = "webmail.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# HTTPS. Plain HTTP is for loopback only (`make run`): when ALLOWED_HOSTS names anything else the
# site is taken to be served over TLS, directly or behind CORREIO_TRUSTED_PROXIES (which then say
# so with X-Forwarded-Proto, believed from them only: webmail.middleware.trusted_proxy_scheme),
# and cookies are Secure, plain HTTP is redirected and HSTS is sent. CORREIO_HTTPS overrides.
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
CORREIO_HTTPS = env_bool(
    "CORREIO_HTTPS", not all(host in _LOOPBACK_HOSTS for host in ALLOWED_HOSTS)
)
SESSION_COOKIE_SECURE = env_bool("CORREIO_SECURE_COOKIES", CORREIO_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if CORREIO_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Health checks come from inside, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("CORREIO_HSTS_SECONDS", 365 * 86400, minimum=1)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CORREIO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CORREIO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Submitting a domain to browsers' preload lists is the operator's decision to make
        # (CORREIO_HSTS_PRELOAD=1), not a default; `check --deploy` would warn about it.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [ASSETS_DIR / "static"]
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "correio": {"handlers": ["console"], "level": env_str("CORREIO_LOG_LEVEL", "INFO"),
                    "propagate": False},
    },
}

# --- Correio --------------------------------------------------------------------------------
CORREIO_HOSTNAME = env_str("CORREIO_HOSTNAME", "mail.example.test")
CORREIO_MAX_MESSAGE_SIZE = env_size("CORREIO_MAX_MESSAGE_SIZE", 25 * 1024 * 1024)
CORREIO_DEFAULT_QUOTA = env_size("CORREIO_DEFAULT_QUOTA", 1024 * 1024 * 1024)
CORREIO_TLS_CERT = env_str("CORREIO_TLS_CERT", str(VAR_DIR / "tls" / "cert.pem"))
CORREIO_TLS_KEY = env_str("CORREIO_TLS_KEY", str(VAR_DIR / "tls" / "key.pem"))
CORREIO_SMTP_ADDR = env_addr("CORREIO_SMTP_ADDR", "127.0.0.1:2525")
CORREIO_SUBMISSION_ADDR = env_addr("CORREIO_SUBMISSION_ADDR", "127.0.0.1:2587")
CORREIO_SUBMISSIONS_ADDR = env_addr("CORREIO_SUBMISSIONS_ADDR", "127.0.0.1:2465")
CORREIO_IMAP_ADDR = env_addr("CORREIO_IMAP_ADDR", "127.0.0.1:2143")
CORREIO_IMAPS_ADDR = env_addr("CORREIO_IMAPS_ADDR", "127.0.0.1:2993")
CORREIO_POP3_ADDR = env_addr("CORREIO_POP3_ADDR", "127.0.0.1:2110")
CORREIO_POP3S_ADDR = env_addr("CORREIO_POP3S_ADDR", "127.0.0.1:2995")
CORREIO_MANAGESIEVE_ADDR = env_addr("CORREIO_MANAGESIEVE_ADDR", "127.0.0.1:2190")
# Sieve filters: the largest script and the number of scripts per mailbox (RFC 5804 §2.3).
CORREIO_SIEVE_MAX_SCRIPT_SIZE = env_size("CORREIO_SIEVE_MAX_SCRIPT_SIZE", 64 * 1024)
CORREIO_SIEVE_MAX_SCRIPTS = env_int("CORREIO_SIEVE_MAX_SCRIPTS", 20, minimum=1)
CORREIO_SMARTHOST = env_str("CORREIO_SMARTHOST", "")
CORREIO_SMARTHOST_USER = env_str("CORREIO_SMARTHOST_USER", "")
CORREIO_SMARTHOST_PASSWORD = env_secret("CORREIO_SMARTHOST_PASSWORD", "")
# Metrics (Prometheus text format): the mail listeners' and the worker's HTTP listener (empty =
# off; the Procfile gives each process its own), and a token that /metrics and those listeners
# then require as "Authorization: Bearer" (without one, the web serves /metrics to loopback only).
CORREIO_METRICS_ADDR = env_addr("CORREIO_METRICS_ADDR", "")
CORREIO_METRICS_TOKEN = env_secret("CORREIO_METRICS_TOKEN", "")
# The failed-login throttle of every door (mailcore/services/throttle.py, README "Sign-in").
# Attempts per (login, client address) within the window before that pair is refused:
CORREIO_AUTH_MAX_FAILURES = env_int("CORREIO_AUTH_MAX_FAILURES", 10, minimum=1)
CORREIO_AUTH_FAILURE_WINDOW = env_int("CORREIO_AUTH_FAILURE_WINDOW", 900, minimum=1)
# Growing wait between a pair's attempts: DELAY_MS * 2**(n-1), at most MAX_DELAY_MS (Dovecot).
CORREIO_AUTH_DELAY_MS = env_int("CORREIO_AUTH_DELAY_MS", 1000)
CORREIO_AUTH_MAX_DELAY_MS = env_int("CORREIO_AUTH_MAX_DELAY_MS", 15000)
# Failed attempts on one login from all addresses before everyone waits SOFT_DELAY_MS for it.
CORREIO_AUTH_ACCOUNT_SOFT_LIMIT = env_int("CORREIO_AUTH_ACCOUNT_SOFT_LIMIT", 30, minimum=1)
CORREIO_AUTH_SOFT_DELAY_MS = env_int("CORREIO_AUTH_SOFT_DELAY_MS", 2000)
# Different logins failed from one client address before it is blocked (password spraying).
CORREIO_AUTH_SPRAY_LIMIT = env_int("CORREIO_AUTH_SPRAY_LIMIT", 20, minimum=1)
CORREIO_AUTH_SPRAY_BLOCK = env_int("CORREIO_AUTH_SPRAY_BLOCK", 3600, minimum=1)
# Failed two-factor codes for one account from all addresses before no code is checked for it
# until the window has passed (mailcore/services/twofactor.py): only a holder of the password
# gets there, and a million codes must not be searchable from many addresses.
CORREIO_AUTH_CODE_LIMIT = env_int("CORREIO_AUTH_CODE_LIMIT", 30, minimum=1)
# The web (a thread per request) waits at most this long, else answers with a form error.
CORREIO_AUTH_WEB_MAX_WAIT_MS = env_int("CORREIO_AUTH_WEB_MAX_WAIT_MS", 3000)
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; none by default.
CORREIO_TRUSTED_PROXIES = env_list("CORREIO_TRUSTED_PROXIES", "")
# Tombstones of expunged UIDs kept per folder (services/tombstones.py; issue 12): changes since
# an older mod-sequence are answered as RFC 7162 §3.2.5.2 allows, without them.
CORREIO_EXPUNGED_KEEP = env_int("CORREIO_EXPUNGED_KEEP", 10000, minimum=1)

# --- Webmail --------------------------------------------------------------------------------
# htmx comes from the npm registry (package.json; `make setup` runs npm), never from a CDN, and
# is served as /static/vendor/htmx/htmx.min.js.
_HTMX_DIST = BASE_DIR / "node_modules" / "htmx.org" / "dist" if _SOURCE_TREE else ASSETS_DIR / "htmx"
if _HTMX_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/htmx", _HTMX_DIST))
# Quill, the rich-text editor of compose (issue 17), the same way: /static/vendor/quill/.
_QUILL_DIST = BASE_DIR / "node_modules" / "quill" / "dist" if _SOURCE_TREE else ASSETS_DIR / "quill"
if _QUILL_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/quill", _QUILL_DIST))
# A rich-text message posts its pictures inside the HTML (5 MB each at most, in base64): the
# compose form may be that large; other forms stay far below it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
MIDDLEWARE.append("webmail.middleware.security_headers")
MIDDLEWARE.append("webmail.middleware.browser_time_zone")
LOGIN_REDIRECT_URL = "/"
CORREIO_WEBMAIL_PAGE_SIZE = env_int("CORREIO_WEBMAIL_PAGE_SIZE", 50, minimum=5)
CORREIO_WEBMAIL_POLL_SECONDS = env_int("CORREIO_WEBMAIL_POLL_SECONDS", 5, minimum=1)

# --- Outbound queue and relay ---------------------------------------------------------------
# The transport that carries queued mail out (mailcore/transports/): direct delivery by MX
# lookup, or through CORREIO_SMARTHOST when that is set.
CORREIO_OUTBOUND_TRANSPORT = env_str(
    "CORREIO_OUTBOUND_TRANSPORT", "mailcore.transports.smtp.SMTPTransport"
)
# Publish a delivery task when mail is queued; off, the periodic sweep alone dispatches.
CORREIO_OUTBOUND_DISPATCH = env_bool("CORREIO_OUTBOUND_DISPATCH", True)
# Seconds between attempts after each failure (the last repeats), Postfix-like; queue lifetime.
CORREIO_OUTBOUND_RETRY_SCHEDULE = env_int_list(
    "CORREIO_OUTBOUND_RETRY_SCHEDULE", "300,600,1200,2400,4000", minimum=1
)
CORREIO_OUTBOUND_LIFETIME = env_int("CORREIO_OUTBOUND_LIFETIME", 5 * 86400, minimum=1)
# A "delayed" DSN after this long deferred (RFC 3464 Action: delayed); 0 sends none.
CORREIO_OUTBOUND_DELAY_WARNING = env_int("CORREIO_OUTBOUND_DELAY_WARNING", 4 * 3600)
# The sweep (Celery beat) re-dispatches due entries from the database this often.
CORREIO_OUTBOUND_SWEEP_SECONDS = env_int("CORREIO_OUTBOUND_SWEEP_SECONDS", 60, minimum=1)
# Finished queue entries stay visible in the admin this long.
CORREIO_OUTBOUND_KEEP_DAYS = env_int("CORREIO_OUTBOUND_KEEP_DAYS", 7)
# Lock lease over one destination's attempt; a task stops starting destinations after
# CORREIO_RELAY_ATTEMPT_DEADLINE and leaves the rest to a fresh task, so every task ends well
# within the broker's visibility timeout (3600 s above) and is never handed out twice.
CORREIO_RELAY_ATTEMPT_DEADLINE = env_int("CORREIO_RELAY_ATTEMPT_DEADLINE", 900, minimum=1)
CORREIO_OUTBOUND_LOCK_SECONDS = env_int(
    "CORREIO_OUTBOUND_LOCK_SECONDS", CORREIO_RELAY_ATTEMPT_DEADLINE + 120, minimum=1
)
# A worker pass takes up to this many due messages for the same destinations (and this many
# bytes of them) and sends them over one kept-open SMTP session, recording each destination's
# results in one transaction; a task's own messages always come first.
CORREIO_OUTBOUND_BATCH = env_int("CORREIO_OUTBOUND_BATCH", 100, minimum=1)
CORREIO_OUTBOUND_BATCH_BYTES = env_int("CORREIO_OUTBOUND_BATCH_BYTES", 32 * 1024 * 1024,
                                       minimum=1)
# RFC 5321 §4.5.3.2 timeouts (seconds): greeting and MAIL/RCPT 5 min, DATA 2 min, each data
# block 3 min, the final dot 10 min. Connecting has no RFC figure; Postfix uses 30 s.
CORREIO_RELAY_CONNECT_TIMEOUT = env_int("CORREIO_RELAY_CONNECT_TIMEOUT", 30, minimum=1)
CORREIO_RELAY_COMMAND_TIMEOUT = env_int("CORREIO_RELAY_COMMAND_TIMEOUT", 300, minimum=1)
CORREIO_RELAY_DATA_INIT_TIMEOUT = env_int("CORREIO_RELAY_DATA_INIT_TIMEOUT", 120, minimum=1)
CORREIO_RELAY_DATA_BLOCK_TIMEOUT = env_int("CORREIO_RELAY_DATA_BLOCK_TIMEOUT", 180, minimum=1)
CORREIO_RELAY_DATA_TERM_TIMEOUT = env_int("CORREIO_RELAY_DATA_TERM_TIMEOUT", 600, minimum=1)
# The port MX hosts are reached on (25; tests use loopback servers on another port).
CORREIO_RELAY_PORT = env_int("CORREIO_RELAY_PORT", 25, minimum=1)
# Nameservers to ask (``ip`` or ``ip:port``), default the system's; and fixed routes per domain
# (``domain=host:port host:port;...``) that bypass DNS, for tests and split setups.
CORREIO_DNS_NAMESERVERS = env_list("CORREIO_DNS_NAMESERVERS", "")
CORREIO_MX_OVERRIDES = env_host_map("CORREIO_MX_OVERRIDES", "")
# Inbound trust (mailcore/trust): SPF, DKIM, DMARC and ARC at the MX's end of DATA. The DNS
# look-ups of one message share CORREIO_DNS_TIMEOUT seconds; past it the client gets 451 4.4.3.
CORREIO_SENDER_AUTH = env_bool("CORREIO_SENDER_AUTH", True)
CORREIO_DNS_TIMEOUT = env_int("CORREIO_DNS_TIMEOUT", 5, minimum=1)
# ARC sealers (RFC 8617 §7.2) whose passing chain overrides a DMARC failure (mailing lists, our
# own forwarders); and whether SPF "fail" without DMARC is refused (default: only marked).
CORREIO_ARC_TRUSTED_SEALERS = env_list("CORREIO_ARC_TRUSTED_SEALERS", "")
CORREIO_SPF_FAIL_REJECT = env_bool("CORREIO_SPF_FAIL_REJECT", False)
# rspamd (unset = no spam engine): the normal worker's URL for /checkv2 at end of DATA, how long
# the client may wait for it (past it, accepted unscanned), and the controller that learns from
# Junk / Not junk (unset = no training) with its password.
CORREIO_RSPAMD_URL = env_str("CORREIO_RSPAMD_URL", "")
CORREIO_RSPAMD_TIMEOUT = env_int("CORREIO_RSPAMD_TIMEOUT", 5, minimum=1)
CORREIO_RSPAMD_CONTROLLER_URL = env_str("CORREIO_RSPAMD_CONTROLLER_URL", "")
CORREIO_RSPAMD_PASSWORD = env_secret("CORREIO_RSPAMD_PASSWORD", "")
# A queue name of its own lets several installations (or test runs) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CORREIO_CELERY_QUEUE", "celery")
CELERY_BEAT_SCHEDULE = {
    "outbound-sweep": {
        "task": "mailcore.tasks.sweep_outbound",
        "schedule": float(CORREIO_OUTBOUND_SWEEP_SECONDS),
    },
    "outbound-cleanup": {"task": "mailcore.tasks.cleanup_outbound", "schedule": 3600.0},
    "login-records-purge": {"task": "mailcore.tasks.purge_login_records", "schedule": 600.0},
    "expunged-cleanup": {"task": "mailcore.tasks.purge_expunged", "schedule": 86400.0},
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker is polled; kombu's default of one poll a second caps a worker at a
    # task or two a second.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.02
    # kombu puts its control (pidbox) files in ./control unless told otherwise.
    CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"] = str(CELERY_BROKER_DIR / "control")
else:
    # Queueing mail must not hang on an unreachable Redis: the sweep dispatches it later.
    CELERY_BROKER_TRANSPORT_OPTIONS.setdefault("socket_connect_timeout", 5)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport with atomic publishing: the stock one lets a worker read a
    # half-written message and stop (mailcore/celery_filesystem.py).
    CELERY_BROKER_TRANSPORT = "mailcore.celery_filesystem:Transport"
