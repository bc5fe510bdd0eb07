"""Django settings for tests/test_django.py (applied there with `settings.configure`).

The database is SQLite in memory, shared between threads (`cache=shared`): async views and the ASGI
server run the ORM in worker threads, and a plain `:memory:` database is one per connection.
"""

FLAGS = [
    {"key": "on-flag", "enabled": True},
    {"key": "off-flag", "enabled": False},
    {"key": "theme", "enabled": True, "variants": {"dark": 1}, "default_variant": "dark"},
    {
        "key": "staff-only",
        "enabled": True,
        "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@staff.test"]}]}],
    },
    {"key": "limits", "enabled": True, "default_variant": "std", "values": {"std": {"rows": 500, "zero": 0}}},
]

SECRET_KEY = "ferroflag-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",  # the database source's admin (tests/test_django_db.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "ferroflag.django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "file:ferroflag_django_tests?mode=memory&cache=shared",
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for tests only
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ferroflag.django.middleware.FlagMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",  # the admin's
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "loaders": [
                "django.template.loaders.app_directories.Loader",  # the admin's templates
                (
                    "django.template.loaders.locmem.Loader",
                    {
                        "flag.html": '{% load ferroflag %}[{% flag "on-flag" %}on{% else %}off{% endflag %}]'
                        '[{% flag "off-flag" %}on{% else %}off{% endflag %}]'
                        '[{% flag "staff-only" %}staff{% endflag %}]'
                        '[{% flag_variant "theme" %}]'
                        '[{% flag_variant "theme" as v %}{% if v == "dark" %}is-dark{% endif %}]',
                    },
                ),
            ],
        },
    }
]
FERROFLAG = {"FLAGS": FLAGS}
LOGGING_CONFIG = None
