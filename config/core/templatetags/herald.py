"""Template filters every workspace page uses for dates, so that they read alike everywhere,
and `web_url` for a link written from stored data.

    {% load herald %}{{ run.started_at|when }}   → 2026-12-07 16:50 (en), 07.12.2026 16:50 (uk)
    {{ contact.birthday|day }}                    → 2026-12-07 / 07.12.2026

Both are in the active language's short format and the current time zone; an empty value
shows "—".
"""

from datetime import date, datetime
from urllib.parse import urlsplit

from django import template
from django.utils import timezone
from django.utils.formats import date_format

register = template.Library()

EMPTY = "—"


@register.filter
def when(value: datetime | None) -> str:
    if not value:
        return EMPTY
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, "SHORT_DATETIME_FORMAT")


@register.filter
def day(value: date | datetime | None) -> str:
    if not value:
        return EMPTY
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, "SHORT_DATE_FORMAT")


@register.filter
def web_url(value: str | None) -> str:
    """`value` if it is an http(s) URL, else "": for an href written from stored data (an
    order item's link), where a javascript: or data: URL would be a script a click runs."""
    text = (value or "").strip()
    return text if urlsplit(text).scheme.lower() in ("http", "https") else ""
