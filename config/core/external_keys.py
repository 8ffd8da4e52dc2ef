"""External keys: the string ids an integrator's own system gives segments, templates and
campaigns (the CRM campaigns API's `"audienceId": "aud-spring-prospects"`,
`"templateId": "tpl-spring-launch"`, campaign ids such as `camp-1`).

A key is optional and unique per kind of object. It is slug-like (letters, digits and
`-`, `_`, `.`; starting with a letter or a digit; at most 100 characters) and never all
digits, so an id in a path or a body is read one way only: digits are Herald's numeric id,
anything else is a key. Every edge that takes such an id resolves both forms with
`by_id_or_key`.
"""

import re
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.core.errors import FieldError

KEY_MAX = 100
# A numeric id up to a bigint's digits; longer digit strings name nothing.
_NUMERIC = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# For URL patterns: a numeric id or a key (a key is never all digits, see above).
PATH_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
ID_MAX = 2**63 - 1
KEY_HELP = (
    "Your own id for it (e.g. aud-spring-prospects): letters, digits, - _ and ., at most "
    "100 characters, not only digits; unique. Anywhere Herald's numeric id is accepted, "
    "this key is too."
)

M = TypeVar("M", bound=models.Model)


def external_key_problem(value: str, *, reserved: tuple[str, ...] = ()) -> str:
    """Why `value` cannot be a key, or "" when it can."""
    if len(value) > KEY_MAX:
        return f"at most {KEY_MAX} characters"
    if not _KEY.fullmatch(value):
        return (
            "only letters, digits, '-', '_' and '.', starting with a letter or a digit "
            "(e.g. aud-spring-prospects)"
        )
    if value.isdigit():
        return "must not be only digits (those are Herald's numeric ids)"
    if value.lower() in reserved:
        return f"{value!r} is reserved (it names a path of the API)"
    return ""


def external_key_clean(value: Any, *, field: str, reserved: tuple[str, ...] = ()) -> str | None:
    """A body's or form's key: None when empty (no key), else the key. Raises FieldError."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(field, "must be a string (e.g. aud-spring-prospects) or null")
    problem = external_key_problem(value.strip(), reserved=reserved)
    if problem:
        raise FieldError(field, problem)
    return value.strip()


def validate_external_key(value: str) -> None:
    """The model field's validator (admin and model forms)."""
    problem = external_key_problem(value)
    if problem:
        raise ValidationError(problem)


def external_key_field(**kwargs: Any) -> models.CharField:
    """The optional, unique `external_key` column the three models share."""
    return models.CharField(
        max_length=KEY_MAX,
        null=True,
        blank=True,
        unique=True,
        validators=[validate_external_key],
        verbose_name="external key",
        help_text=KEY_HELP,
        **kwargs,
    )


# The edges' field for it: one label and help text for every page, one API field shape.
FORM_LABEL = gettext_lazy("External key")


def _form_help(example: str) -> str:
    return gettext(
        "Optional: your own id for it in other systems (e.g. %(example)s); letters, digits, "
        "- _ and ., not only digits. The API accepts it wherever it takes the id."
    ) % {"example": example}


form_help = lazy(_form_help, str)


def external_key_form_field(example: str) -> forms.CharField:
    """A page form's key field (a plain form: the service checks format and uniqueness)."""
    return forms.CharField(
        max_length=KEY_MAX, required=False, label=FORM_LABEL, help_text=form_help(example)
    )


def external_key_api_field(note: str) -> serializers.CharField:
    """An API serializer's `externalKey`; the service checks format and uniqueness."""
    return serializers.CharField(
        source="external_key",
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=KEY_MAX,
        validators=[],
        help_text=f"{KEY_HELP} {note}",
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": ID_MAX},
            {"type": "string", "pattern": f"^({PATH_ID})$", "maxLength": KEY_MAX},
        ],
        "nullable": True,
    }
)
class IdOrKeyField(serializers.JSONField):
    """In a documented body: Herald's numeric id or the object's external key."""


def numeric_id(value: Any) -> int | None:
    """`value` as a numeric id (an int, or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= ID_MAX else 0
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        number = int(value.strip())
        return number if 1 <= number <= ID_MAX else 0
    return None


def external_key_taken(model: type[models.Model], key: str | None, *, pk: int | None) -> bool:
    """Whether another object of `model` (not the one with `pk`) has this external key."""
    if key is None:
        return False
    return model._default_manager.filter(external_key=key).exclude(pk=pk).exists()


def by_id_or_key(queryset: models.QuerySet[M], value: Any) -> M | None:
    """The object whose numeric id or external key `value` is; None when none is (or when
    `value` is neither form)."""
    number = numeric_id(value)
    if number is not None:
        return queryset.filter(pk=number).first() if number else None
    if isinstance(value, str) and value.strip():
        return queryset.filter(external_key=value.strip()).first()
    return None


def ids_or_keys(queryset: models.QuerySet[M], values: list[Any]) -> dict[Any, int]:
    """{value as given: numeric id} for each of `values` that names an object, in two
    queries whatever the list's length (aggregated metrics take up to a thousand)."""
    numbers = {value: numeric_id(value) for value in values}
    wanted_ids = {n for n in numbers.values() if n}
    keys = {
        value.strip()
        for value, n in numbers.items()
        if n is None and isinstance(value, str) and value.strip()
    }
    found_ids = set(queryset.filter(pk__in=wanted_ids).values_list("pk", flat=True))
    by_key = dict(queryset.filter(external_key__in=keys).values_list("external_key", "pk"))
    resolved: dict[Any, int] = {}
    for value, n in numbers.items():
        if n:
            if n in found_ids:
                resolved[value] = n
        elif n is None and isinstance(value, str) and value.strip() in by_key:
            resolved[value] = by_key[value.strip()]
    return resolved
