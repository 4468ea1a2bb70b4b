"""Settings for the test suite: the real settings, with tasks in-process unless a test says otherwise.

The integration tests that need a real worker switch the Celery app to the broker themselves.
"""
import os
import tempfile

# A developer's .env (DEBUG, SECRET_KEY, DATABASE_URL ...) must not leak into the tests, nor into the
# settings the tests load in child processes (they inherit this environment).
os.environ["UNITCROWD_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-used-anywhere-else")
os.environ.setdefault("UNITCROWD_VAR_DIR", tempfile.mkdtemp(prefix="unitcrowd-test-"))

from .settings import *  # noqa: E402,F401,F403

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
RESULTS_AGGREGATE_DEBOUNCE = 0.0  # aggregation runs at once, in-process, where tests can see it
DELAYED_TASKS_IN_SUBPROCESS = False  # a child process would not see the test database
BACKGROUND_TASKS_INLINE = True  # "Aggregate now" and the like run where tests can see them
UNITCROWD_EAGER_JOBS_IN_THREAD = False  # jobs started in tests finish before the call returns
CROWD_CONFIRM_OUTSIDE_ANSWERS = False  # tests confirm outside answers themselves, with stubbed marketplaces
AXES_ENABLED = False  # tests sign in with client.login(), which gives axes no request; tests of axes turn it on
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder otherwise
