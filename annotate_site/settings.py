"""UnitCrowd settings, read from the environment and the project's .env file (see README "Configuration").

With nothing set the site runs on a SQLite file with Celery tasks executed in-process;
a lab sets DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) for real workers.
"""
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from .env import envbool, envfloat, envint, envlist, envrate, envstr, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
# Development settings from the project's .env (`make run` writes DEBUG=1 and a SECRET_KEY), so that
# `python manage.py ...` works as the README prints it; the real environment wins over the file.
ENV_FILE = load_env_file(BASE_DIR / ".env")
VAR_DIR = Path(envstr("UNITCROWD_VAR_DIR") or BASE_DIR / "var")

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off: export SECRET_KEY=<a long random string> "
            "(or DEBUG=1 for local development)."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens hashed at rest, with an expiry (replaces rest_framework.authtoken)
    "axes",  # lockout after repeated failed logins and sign-ups
    "csp",  # Content-Security-Policy header (settings: CONTENT_SECURITY_POLICY)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI files served by us: the API docs work offline
    "units.projects",  # the bottom app: projects, members, roles
    "units.dissection",
    "units.crowd",
    "units.results",
    "units.sanity",
    "annotate_site",  # site-wide management commands (demo) and static files
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
    "csp.middleware.CSPMiddleware",
    "annotate_site.api_versions.DeprecatedApiPathMiddleware",
    "annotate_site.idempotency.IdempotencyKeyMiddleware",  # after auth: keys are scoped to the caller
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it turns a lockout into a 429
]

# Content-Security-Policy on every response (django-csp): scripts and style sheets from this site only,
# inline <script>/<style> blocks only with the request's nonce (`nonce="{{ request.csp_nonce }}"`), no
# inline event handlers, nothing framed. Inline style *attributes* stay allowed (progress bars' widths):
# they cannot run code. The 500 page renders without a request, so its <style> is allowed by hash
# (tests/test_csp.py checks the hash against templates/500.html).
SERVER_ERROR_STYLE_HASH = "'sha256-+zkyzdSS4X5NqtomZZc0DL1FWG8gYRJElI5A2oXw+hA='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE, SERVER_ERROR_STYLE_HASH],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "annotate_site.urls"
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
                "annotate_site.context_processors.roles",
            ],
        },
    },
]
WSGI_APPLICATION = "annotate_site.wsgi.application"

# --- database -------------------------------------------------------------------------
_database_url = envstr("DATABASE_URL")
if _database_url:
    if not _database_url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgres://, postgresql:// or sqlite:// URL, got {_database_url.split(':')[0]!r}."
        )
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except Exception as exc:  # dj-database-url raises several types for malformed URLs
        raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {exc}") from None
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "db.sqlite3")}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Simultaneous claims on SQLite: a deferred transaction that reads and then writes cannot wait
    # for the lock (SQLite answers "database is locked" at once, a 500). IMMEDIATE takes the write lock
    # when the transaction begins, so writers queue for up to `timeout` seconds instead; WAL lets
    # readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
elif "jit" not in str(DATABASES["default"].get("OPTIONS", {}).get("options", "")):
    # PostgreSQL's JIT compiles any plan whose estimate passes jit_above_cost: the claim's exact query (a
    # slot count per open HIT, asked when the fast shortlist is empty) ran 14 ms and compiled for 558 ms,
    # so 64 annotators polling a drained queue waited 10-15 s a claim. The site's queries are short, so
    # JIT is off for its connections (a DATABASE_URL with ?options=-c%20jit%3Don turns it back on).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" and envbool("DB_PREPARED_STATEMENTS", True):
    # The claim's and submit's plain-SQL reads (annotate_site/plainsql.py) run as prepared statements: PostgreSQL
    # spent twice as long planning them as running them. Only those are prepared (Django's own cursor binds on
    # the client and prepares nothing). A transaction-mode pooler (PgBouncer before 1.21) cannot keep prepared
    # statements: DB_PREPARED_STATEMENTS=0 there.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out users before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT") or VAR_DIR / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT") or VAR_DIR / "media")
DATASETS_ROOT = Path(envstr("DATASETS_ROOT") or VAR_DIR / "datasets")
# Django decides who may read a media file (annotate_site/media.py); who sends the bytes:
# "django" (django.views.static.serve, development), "nginx" (X-Accel-Redirect to the internal
# location MEDIA_SENDFILE_URL, aliased to MEDIA_ROOT) or "xsendfile" (Apache/lighttpd X-Sendfile).
_SENDFILE_BACKENDS = {"django": "django_sendfile.backends.development", "nginx": "django_sendfile.backends.nginx",
                      "xsendfile": "django_sendfile.backends.xsendfile"}
MEDIA_SENDFILE = envstr("MEDIA_SENDFILE", "django") or "django"
if MEDIA_SENDFILE not in _SENDFILE_BACKENDS:
    raise ImproperlyConfigured(f"MEDIA_SENDFILE={MEDIA_SENDFILE!r}: use one of {', '.join(_SENDFILE_BACKENDS)}.")
SENDFILE_BACKEND = _SENDFILE_BACKENDS[MEDIA_SENDFILE]
SENDFILE_ROOT = str(MEDIA_ROOT)
SENDFILE_URL = envstr("MEDIA_SENDFILE_URL", "/protected-media") or "/protected-media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads: checkpoints and dataset zips can be large; they stream to disk.
UPLOAD_MAX_BYTES = envint("UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1024)
DATASET_ZIP_MAX_UNPACKED_BYTES = envint("DATASET_ZIP_MAX_UNPACKED_BYTES", 8 * 1024**3, minimum=1024)
# Largest image (width x height) accepted in an uploaded dataset: refused from the header, before decoding.
UPLOAD_IMAGE_MAX_PIXELS = envint("UPLOAD_IMAGE_MAX_PIXELS", 40_000_000, minimum=1)
# Folders, besides DATASETS_ROOT, that requesters may register datasets from by path (the web
# page and the API); `manage.py register_dataset` is run by the operator and may use any folder.
DATASET_PATHS_ALLOWED = [Path(p) for p in envlist("DATASET_PATHS_ALLOWED", [])]
for _allowed in DATASET_PATHS_ALLOWED:
    if not _allowed.is_absolute():
        raise ImproperlyConfigured(f"DATASET_PATHS_ALLOWED: {str(_allowed)!r} is not an absolute folder.")
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024**2
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS=1: the site is served over HTTPS (directly or behind a TLS proxy that sets
# X-Forwarded-Proto): plain HTTP is redirected, browsers are told to stay on HTTPS (HSTS) and
# cookies travel over HTTPS only. One switch, so a deployment cannot get half of it.
HTTPS = envbool("HTTPS", False)
if HTTPS:
    # Trust X-Forwarded-Proto only because the proxy in front of the site sets it (and strips a client's).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check talks plain HTTP inside
    SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
if CELERY_BROKER_URL and not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "memory://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a redis:// URL (or memory:// for tests).")
# No broker configured: run tasks in-process so the site works with nothing else installed.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process whose memory passed this after a task is replaced by a fresh one (Celery's own guard, KiB):
# a long-lived worker stays bounded whatever a big dissection or aggregation left allocated. 0: never.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = envint("WORKER_MAX_MEMORY_MB", 3072, minimum=0) * 1024 or None
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=10)}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"tasks.jobs.*": {"queue": "gpu"}}
CELERY_IMPORTS = ("tasks.jobs", "tasks.crowd", "tasks.results", "tasks.sanity")
CELERY_BEAT_SCHEDULE: dict = {}  # filled by the task modules' owners below
CELERY_BEAT_SCHEDULE.update({
    "crowd-reclaim-expired": {"task": "tasks.crowd.reclaim_expired_assignments", "schedule": 60.0},
    "crowd-auto-approve": {"task": "tasks.crowd.auto_approve_assignments", "schedule": 300.0},
    # Submitted MTurk assignments matched to the answers stored here (units/crowd/mturk.py).
    "crowd-mturk-sync": {"task": "tasks.crowd.mturk_sync", "schedule": 300.0},
})
# The safety net for aggregation runs lost with a killed worker (their debounce mark holds the layer
# until it goes stale, and a quiet layer gets no new answer to queue a run): every minute.
CELERY_BEAT_SCHEDULE.update({"results-aggregate-stale": {"task": "tasks.results.aggregate_stale",
                                                         "schedule": envfloat("AGGREGATE_SWEEP_SECONDS", 60.0,
                                                                              minimum=5.0)}})
CELERY_TIMEZONE = "UTC"

# --- aggregation ---------------------------------------------------------------------------
# Seconds between a layer's first newly completed HIT and its aggregation run: answers arriving
# meanwhile join that run, so a busy layer is aggregated at most once per this interval.
RESULTS_AGGREGATE_DEBOUNCE = envfloat("AGGREGATE_DEBOUNCE_SECONDS", 5.0, minimum=0.0)
# Adaptive redundancy: a label HIT whose published label (the lower of the word's and the category's
# calibrated probabilities) stays below this after all its assignments gets one more, up to the cap in
# all. A batch's own redundancy_probability / redundancy_cap override them.
RESULTS_REDUNDANCY_PROBABILITY = envfloat("REDUNDANCY_PROBABILITY", 0.8, minimum=0.0)
RESULTS_REDUNDANCY_CAP = envint("REDUNDANCY_CAP", 5, minimum=1)
# Without a broker, a delayed task (a layer's debounced aggregation) runs in a child process started by
# a timer thread, not in the web server's own interpreter: Dawid-Skene holds the GIL for seconds, which
# would stall every request of the embedded server meanwhile. 0: in the timer thread itself.
DELAYED_TASKS_IN_SUBPROCESS = envbool("DELAYED_TASKS_IN_SUBPROCESS", True)

# --- dissection jobs ---------------------------------------------------------------------
# Device for the engine on workers: "cuda:N", "cpu", or "auto"/empty (CUDA when present; the GPU
# with the most free memory when several are visible).
UNITCROWD_DEVICE = envstr("UNITCROWD_DEVICE")
# Low-activation "sentinel" pictures kept per unit (ICLR 2015 quality check); 0 turns them off.
UNITCROWD_SENTINELS_PER_UNIT = envint("UNITCROWD_SENTINELS_PER_UNIT", 3, minimum=0)
# Without a broker, a job started from a page runs in a background thread of the web process
# (so the page returns at once); tests and commands run jobs synchronously instead.
UNITCROWD_EAGER_JOBS_IN_THREAD = envbool("UNITCROWD_EAGER_JOBS_IN_THREAD", True)
# Test hook: seconds slept at each progress report (lets a test kill a worker mid-task).
UNITCROWD_JOB_STEP_DELAY = envfloat("UNITCROWD_JOB_STEP_DELAY", 0.0, minimum=0.0)

# --- cache (throttle counters) ------------------------------------------------------------
# DRF's throttles count in the cache: with several web processes it must be shared (Redis).
CACHE_URL = envstr("CACHE_URL")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("CACHE_URL must be a redis:// URL (or unset: a per-process memory cache).")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
          if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- abuse limits and API tokens ----------------------------------------------------------------
# Logins and sign-ups (django-axes): after LOGIN_FAILURE_LIMIT failures from one address for one
# user name (sign-ups count under one pseudo name), 429 with Retry-After for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # others cannot lock a user out from elsewhere
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotate_site.throttling.lockout_response"
# Against password spraying (one wrong password for many user names): this many failures from one
# address, any user names, lock the address out for LOGIN_LOCKOUT_MINUTES.
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 10, minimum=1)
AXES_HANDLER = "annotate_site.throttling.AxesHandler"
# The client's address: REMOTE_ADDR when nothing stands in front of the site; behind TRUSTED_PROXIES
# reverse proxies, the address the outermost of them saw (X-Forwarded-For, counted from the right).
# This one number drives DRF's throttles (NUM_PROXIES) and the logins' lockouts (axes) alike: too low
# and every client shares the proxy's address (anyone can lock anyone out), too high and clients
# choose their own address (no limit holds).
TRUSTED_PROXIES = envint("TRUSTED_PROXIES", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "annotate_site.throttling.client_ip"
# Scoped DRF throttles, per user (per address before login); the load test raises them.
THROTTLE_RATES = {
    "token": envrate("THROTTLE_TOKEN", "10/min"),
    "claim": envrate("THROTTLE_CLAIM", "60/min"),
    "submit": envrate("THROTTLE_SUBMIT", "60/min"),
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=envint("API_TOKEN_TTL_HOURS", 24, minimum=1)),
    "AUTH_HEADER_PREFIX": "Token",  # clients send `Authorization: Token <token>`
    "AUTO_REFRESH": False,
}

# Where the site is reached from outside, for absolute links in files read elsewhere (the Mechanical
# Turk export's Input.image_urls): scheme and host, no trailing slash.
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")) or " " in SITE_URL:
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must start with http:// or https:// (e.g. https://crowd.example.org).")
SITE_URL_DEFAULT = "http://127.0.0.1:8000"  # `check --deploy` warns when an outside crowd is set up with it

# --- outside crowds (Mechanical Turk, Prolific) ----------------------------------------------
# Credentials for every project that stores none of its own (units/crowd/channels.py); a project's owner
# can store its own on the project's crowd-channel page, encrypted with CROWD_CREDENTIALS_KEY (default:
# derived from SECRET_KEY, so changing SECRET_KEY makes stored credentials unreadable: enter them again).
MTURK_AWS_ACCESS_KEY_ID = envstr("MTURK_AWS_ACCESS_KEY_ID")
MTURK_AWS_SECRET_ACCESS_KEY = envstr("MTURK_AWS_SECRET_ACCESS_KEY")
PROLIFIC_API_TOKEN = envstr("PROLIFIC_API_TOKEN")
PROLIFIC_API_URL = envstr("PROLIFIC_API_URL", "https://api.prolific.com/api/v1/")
CROWD_CREDENTIALS_KEY = envstr("CROWD_CREDENTIALS_KEY")
# An outside crowd's answer counts once its marketplace confirms it (units/crowd/confirmation.py): a task
# asks shortly after the answer is stored. Off only in the tests, which ask with stubbed marketplaces.
CROWD_CONFIRM_OUTSIDE_ANSWERS = envbool("CROWD_CONFIRM_OUTSIDE_ANSWERS", True)
# Prolific's platform fee, a share of every reward and bonus paid to participants, counted in the cost shown
# before publishing and in the budget cap. Prolific's pricing page gives 42.8% (0.428) for companies and
# 33.3% (0.333) for academic and non-profit researchers; VAT may apply on top of the fee.
PROLIFIC_FEE_RATE = envfloat("PROLIFIC_FEE_RATE", 0.428, minimum=0.0)

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotate_site.tokens.TokenAuthentication",  # knox, minus a query per request
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    "NUM_PROXIES": TRUSTED_PROXIES,  # unset, DRF would take X-Forwarded-For from anyone
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "UnitCrowd API",
    "DESCRIPTION": "Dissection jobs, units, crowd HITs and aggregated labels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "kind" field with different choices (HITs, exports, datasets, exemplars).
    "ENUM_NAME_OVERRIDES": {"HitKindEnum": "units.crowd.models.HitKind"},
    # Each operation once, under /api/v1/ (the unversioned alias is deprecated).
    "PREPROCESSING_HOOKS": ["annotate_site.api_versions.current_version_only"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO") or "INFO"},
}
