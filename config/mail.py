"""EMAIL_URL → Django email settings.

smtp://user:password@host:587?tls=1   STARTTLS
smtps://user:password@host:465        implicit TLS
file:///path/to/folder                one .log file per message
console://                            print to stdout
"""

from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def _redacted(url: str) -> str:
    """`url` without its password: the error that shows it ends up in logs and consoles."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def email_settings_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if parts.scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise ImproperlyConfigured(f"EMAIL_URL {_redacted(url)!r} has no host.")
        implicit_tls = parts.scheme == "smtps"
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": parts.port or (465 if implicit_tls else 25),
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_SSL": implicit_tls,
            "EMAIL_USE_TLS": not implicit_tls and query.get("tls", "0") in ("1", "true"),
            "EMAIL_TIMEOUT": int(query.get("timeout", "30")),
        }
    if parts.scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": unquote(parts.path),
        }
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {parts.scheme!r} is not supported (smtp, smtps, file, console)."
    )
