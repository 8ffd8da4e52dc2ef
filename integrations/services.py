"""Writes to integrations (the connected providers): save with the kind's settings checked and
its credentials sealed, test the connection, enable, disable, delete. The Integrations page,
Django admin and any later API call these, so a rule is written once.

Decisions:
- A kind's `fields` (campaigns.delivery.providers.SettingField) are the whole schema: a value
  is checked against its field's type here, then the provider class may check the whole set
  (`settings_validate(values)`, raising FieldError). Unknown names are refused rather than
  kept, so a typo never silently becomes a setting nobody reads.
- Secret values are sealed apart from the settings and never read back to a page. A blank
  secret keeps the stored one, which is how an edit form that never shows secrets works; a
  secret may be `env:NAME`, resolved when used (config.core.secrets).
- One default per channel: making an integration the default takes the flag off every other
  integration sharing one of its channels (the flag is per row, not per channel, so such an
  integration stops being the default of its other channels too; the page says so).
- A connection test stores its outcome (last_checked_at, last_error) with an UPDATE of those
  two columns only, so a test running beside an edit of the form never undoes the edit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.utils import timezone

from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    SettingField,
    provider_kinds,
    provider_of,
)
from config.core.errors import FieldError, HeraldError
from config.core.models import Integration
from config.core.parsers import text_problem
from config.core.secrets import ENV_PREFIX, secrets_seal, secrets_stored
from contacts.fetch import url_refusal

logger = logging.getLogger(__name__)

NAME_MAX = 100  # Integration.name's max_length
VALUE_MAX = 10_000  # a setting longer than this is a paste gone wrong, not a setting
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
# Long enough that masking it in a message cannot garble ordinary words.
SECRET_MASK_MIN = 4


def provider_class(kind: str) -> type[Provider]:
    cls = provider_kinds().get(kind)
    if cls is None:
        known = ", ".join(sorted(provider_kinds())) or "none installed"
        raise FieldError("kind", f"unknown kind {kind!r}; known: {known}")
    return cls


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def setting_clean(spec: SettingField, value: Any) -> Any:
    """One non-blank value of a setting, as its kind says it is stored; FieldError if not."""
    name = spec.name
    if isinstance(value, str):
        if problem := text_problem(value):
            raise FieldError(name, problem)
        if len(value) > VALUE_MAX:
            raise FieldError(name, f"at most {VALUE_MAX} characters")
        if spec.kind != "textarea" and not spec.secret:
            value = value.strip()
    kind = spec.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise FieldError(name, f"must be true or false, not {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise FieldError(name, f"must be a whole number, not {value!r}")
        try:
            return int(value)
        except ValueError:
            raise FieldError(name, f"must be a whole number, not {value!r}") from None
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FieldError(name, f"must be a number, not {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise FieldError(name, f"must be a number, not {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise FieldError(name, "must be a finite number")
        return number
    if not isinstance(value, str):
        raise FieldError(name, f"must be text, not {type(value).__name__}")
    if spec.secret and value.startswith(ENV_PREFIX):
        if not value[len(ENV_PREFIX) :].strip():
            raise FieldError(name, "env: needs the name of an environment variable (env:NAME)")
        return value
    if kind == "url":
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            raise FieldError(name, f"must be an http(s) URL, not {value!r}") from None
        if reason := url_refusal(value):
            raise FieldError(name, f"must point outside Herald's network: {reason}")
    elif kind == "email":
        try:
            EmailValidator()(value)
        except ValidationError:
            raise FieldError(name, f"must be an email address, not {value!r}") from None
    elif kind == "choice":
        allowed = [choice for choice, _ in spec.choices]
        if value not in allowed:
            raise FieldError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value


def integration_values_check(
    *,
    kind: str,
    name: str,
    channels: list[str],
    values: Mapping[str, Any],
    rate_limit: Any = 0,
    integration: Integration | None = None,
) -> tuple[str, list[str], float, dict[str, Any], dict[str, str]]:
    """Check what integration_save would store; nothing is written. Returns the clean name,
    channels, rate limit, settings and the secrets to seal (the stored ones merged in).
    Raises FieldError naming the first wrong input."""
    cls = provider_class(kind)
    if integration is not None and integration.kind != kind:
        raise FieldError("kind", f"an integration's kind cannot change (it is {integration.kind})")

    if not isinstance(name, str) or _blank(name):
        raise FieldError("name", "is required")
    name = name.strip()
    if problem := text_problem(name):
        raise FieldError("name", problem)
    if len(name) > NAME_MAX:
        raise FieldError("name", f"at most {NAME_MAX} characters")
    others = Integration.objects.filter(name=name)
    if integration is not None:
        others = others.exclude(pk=integration.pk)
    if others.exists():
        raise FieldError("name", f"an integration named {name!r} already exists")

    if not isinstance(channels, list | tuple) or not all(isinstance(c, str) for c in channels):
        raise FieldError("channels", "must be a list of channels")
    unknown = [channel for channel in channels if channel not in cls.channels]
    if unknown:
        served = ", ".join(sorted(cls.channels)) or "none"
        raise FieldError(
            "channels", f"{cls.label or kind} cannot serve {', '.join(unknown)}; it serves {served}"
        )
    if cls.channels and not channels:
        raise FieldError("channels", "pick at least one channel")
    clean_channels = list(dict.fromkeys(channels))

    if isinstance(rate_limit, bool):
        raise FieldError("rate_limit", "must be a number of messages per second")
    try:
        rate = float(rate_limit if not _blank(rate_limit) else 0)
    except (TypeError, ValueError):
        raise FieldError(
            "rate_limit", f"must be a number of messages per second, not {rate_limit!r}"
        ) from None
    if not (0 <= rate < float("inf")):
        raise FieldError("rate_limit", "must be 0 (no limit) or more messages per second")

    known = {spec.name: spec for spec in cls.fields}
    for key in values:
        if key not in known:
            raise FieldError(key, f"{cls.label or kind} has no setting {key!r}")
    stored_secrets = secrets_stored(integration.secrets_sealed) if integration else {}
    settings: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for spec in cls.fields:
        raw = values.get(spec.name)
        if spec.secret:
            if _blank(raw):
                kept = stored_secrets.get(spec.name, "")
                if kept:
                    secrets[spec.name] = kept
                elif spec.required:
                    raise FieldError(spec.name, "is required")
            else:
                secrets[spec.name] = setting_clean(spec, raw)
            continue
        if spec.kind == "bool" and raw is None:
            raw = spec.default if spec.default is not None else False
        if _blank(raw):
            if spec.required and spec.default is None:
                raise FieldError(spec.name, "is required")
            continue
        settings[spec.name] = setting_clean(spec, raw)

    validate = getattr(cls, "settings_validate", None)
    if callable(validate):
        checked = validate({**settings, **secrets})
        if isinstance(checked, dict):
            settings = {k: v for k, v in checked.items() if k in known and not known[k].secret}
            secrets = {k: v for k, v in checked.items() if k in known and known[k].secret}
    return name, clean_channels, rate, settings, secrets


@transaction.atomic
def integration_save(
    *,
    integration: Integration | None = None,
    kind: str,
    name: str,
    channels: list[str],
    values: Mapping[str, Any],
    enabled: bool = True,
    is_default: bool = False,
    rate_limit: Any = 0,
    user: Any = None,
) -> Integration:
    """Create (integration None) or change an integration. `values` holds the kind's
    settings and secrets by field name; a blank secret keeps the stored one. Raises
    FieldError(field, message) and stores nothing when an input is wrong."""
    if integration is not None:
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
    name, channels, rate, settings, secrets = integration_values_check(
        kind=kind,
        name=name,
        channels=channels,
        values=values,
        rate_limit=rate_limit,
        integration=integration,
    )
    row = integration or Integration(kind=kind)
    row.name = name
    row.channels = channels
    row.enabled = bool(enabled)
    row.is_default = bool(is_default)
    row.rate_limit = rate
    row.settings = settings
    row.secrets_sealed = secrets_seal(secrets)
    row.save()
    if row.is_default and channels:
        # One statement: every other row sharing a channel loses the flag, so a channel
        # never has two defaults (integration_for would pick by id between them).
        Integration.objects.filter(is_default=True, channels__overlap=channels).exclude(
            pk=row.pk
        ).update(is_default=False, updated_at=timezone.now())
    logger.info(
        "integration %s (%s) saved by %s",
        row.pk,
        row.kind,
        getattr(user, "pk", None) or "system",
    )
    return row


def _masked(message: str, integration: Integration) -> str:
    """The message with any credential of the integration blotted out: a provider's error
    may echo what it was sent, and this text is shown on pages and stored."""
    try:
        values = integration.secrets().values()
    except HeraldError:
        return message
    for value in values:
        if isinstance(value, str) and len(value) >= SECRET_MASK_MIN:
            message = message.replace(value, "••••")
    return message


def integration_test(*, integration: Integration) -> tuple[bool, str]:
    """Ask the provider whether it can be reached with these settings: (ok, its message).
    The outcome is stored on the row (last_checked_at, last_error)."""
    ok = False
    try:
        message = provider_of(integration).connection_test() or "connected"
        ok = True
    except ProviderError as exc:
        message = exc.message or str(exc)
    except HeraldError as exc:  # stored secrets unreadable with this key
        message = exc.message or str(exc)
    except Exception as exc:
        # A provider should turn its failures into ProviderError; whatever it let through is
        # still the answer to "does it connect", shown rather than a server error.
        logger.exception("connection test of integration %s raised", integration.pk)
        message = f"{type(exc).__name__}: {exc}"
    message = _masked(message, integration)
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(
        last_checked_at=now, last_error="" if ok else message, updated_at=now
    )
    integration.last_checked_at = now
    integration.last_error = "" if ok else message
    return ok, message


def integration_enable(*, integration: Integration) -> Integration:
    return _enabled_set(integration, True)


def integration_disable(*, integration: Integration) -> Integration:
    """Nothing goes through it any more: its channels fall back to their default (or the
    environment's transport); a campaign naming it cannot launch."""
    return _enabled_set(integration, False)


def _enabled_set(integration: Integration, enabled: bool) -> Integration:
    Integration.objects.filter(pk=integration.pk).update(enabled=enabled, updated_at=timezone.now())
    integration.enabled = enabled
    return integration


@transaction.atomic
def integration_delete(*, integration: Integration) -> None:
    """Remove it. Campaigns, templates and send requests that named it fall back to their
    channels' default; its webhook URL stops answering; its stored webhook requests stay."""
    Integration.objects.filter(pk=integration.pk).delete()
