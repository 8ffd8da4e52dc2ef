"""Automatic UTM tagging: a campaign's utm_source, utm_medium, utm_campaign and utm_content,
added to every tracked link of its emails (campaigns.tracking) that does not already carry
the parameter; revenue attribution reads utm_campaign back from orders
(marketing.attribution).

Decisions:
- Defaults come from the campaign when the tagging is switched on: source "herald", medium
  the channel ("email"), campaign a slug of the campaign's name. They are stored then, so a
  renamed campaign keeps the value its links already carry and attribution can find it.
  utm_content left blank means the template's name, decided per send.
- A link's own utm_* values win: only the parameters it lacks are added; the rest of its
  query and its fragment stay as written.
- A value is a short plain string (letters, digits, - _ . + and spaces; at most 100
  characters), so it needs no escaping beyond URL encoding and cannot smuggle parameters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.utils.text import slugify

from config.core.errors import HeraldError

DEFAULT_SOURCE = "herald"
DEFAULT_MEDIUM = "email"
VALUE_MAX = 100
VALUE_RE = re.compile(r"^[\w .+-]*$")
# The body's `utm` keys → Campaign fields.
FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "content": "utm_content",
}


class UtmInvalid(HeraldError):
    """A `utm` value that is not a short plain string; `field` names it (utm.source)."""


@dataclass(frozen=True)
class UtmTags:
    """The parameters a campaign's links get; hashable, so it can key the link cache."""

    source: str
    medium: str
    campaign: str
    content: str = ""

    def params(self) -> tuple[tuple[str, str], ...]:
        pairs = (
            ("utm_source", self.source),
            ("utm_medium", self.medium),
            ("utm_campaign", self.campaign),
            ("utm_content", self.content),
        )
        return tuple((name, value) for name, value in pairs if value)


def utm_value_check(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UtmInvalid("must be a string", field=field)
    value = " ".join(value.split())
    if len(value) > VALUE_MAX:
        raise UtmInvalid(f"at most {VALUE_MAX} characters", field=field)
    if not VALUE_RE.match(value):
        raise UtmInvalid("only letters, digits, spaces and - _ . + are allowed", field=field)
    return value


def campaign_slug(name: str) -> str:
    return slugify(name)[:VALUE_MAX] or "campaign"


def utm_input_clean(data: Any, *, name: str, channels: list[str] | None = None) -> dict:
    """The `utm` object of a campaign body as Campaign field values: {"enabled": true,
    "source", "medium", "campaign", "content"}; null switches the tagging off. Defaults are
    filled in when it is on (see the module docstring). Raises UtmInvalid naming the key."""
    if data is None:
        return {"utm_enabled": False}
    if not isinstance(data, dict):
        raise UtmInvalid(
            'must be an object: {"enabled": true, "source", "medium", "campaign", "content"}',
            field="utm",
        )
    unknown = sorted(set(data) - {"enabled", *FIELDS})
    if unknown:
        raise UtmInvalid(f"unknown key {unknown[0]!r}", field=f"utm.{unknown[0]}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise UtmInvalid("must be true or false", field="utm.enabled")
    values: dict[str, Any] = {"utm_enabled": enabled}
    for key, field in FIELDS.items():
        values[field] = utm_value_check(data.get(key), f"utm.{key}")
    if enabled:
        # The channel its tracked links are in: email, unless the campaign has no email.
        medium = DEFAULT_MEDIUM if not channels or DEFAULT_MEDIUM in channels else channels[0]
        values["utm_source"] = values["utm_source"] or DEFAULT_SOURCE
        values["utm_medium"] = values["utm_medium"] or medium
        values["utm_campaign"] = values["utm_campaign"] or campaign_slug(name)
    return values


def utm_json(campaign: Any) -> dict:
    """The campaign's `utm` object as the API answers it."""
    return {
        "enabled": campaign.utm_enabled,
        **{key: getattr(campaign, field) for key, field in FIELDS.items()},
    }


def campaign_utm(campaign: Any, *, template_name: str = "") -> UtmTags | None:
    """The tags a campaign's emails get (None: tagging is off). A blank utm_content is the
    template's name."""
    if not campaign.utm_enabled:
        return None
    return UtmTags(
        source=campaign.utm_source or DEFAULT_SOURCE,
        medium=campaign.utm_medium or DEFAULT_MEDIUM,
        campaign=campaign.utm_campaign or campaign_slug(campaign.name),
        content=campaign.utm_content or template_name[:VALUE_MAX],
    )


def utm_copy(campaign: Any) -> dict:
    """The UTM settings a copy of the campaign starts with."""
    return {field: getattr(campaign, field) for field in ("utm_enabled", *FIELDS.values())}


@functools.lru_cache(maxsize=1024)  # a campaign's few links, in every message
def url_tag(url: str, tags: UtmTags) -> str:
    """`url` with the tags it does not already carry (its own values win)."""
    params = tags.params()
    if not params:
        return url
    parts = urlsplit(url)
    present = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    missing = [(name, value) for name, value in params if name not in present]
    if not missing:
        return url
    added = urlencode(missing)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
