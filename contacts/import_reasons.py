"""An import failure's reason in words for the marketer, in the page's language; and the
reason a whole import stopped (`description_for_people`).

A failure stores the reason the import rules gave (contacts.validation's `field: problem`
pairs, the API's wording, which the import status API returns as it is) and the row as a
Contact object. The pages and the failed-rows file show it through `reason_for_people`,
which names the field as a person would and quotes the value, from the stored row.
"""

import re

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from contacts.models import CustomField

_FIELD = re.compile(
    r"^(firstName|lastName|channels(\[(\d+)\](\.value|\.type)?)?|address\.(\w+)|languageCode"
    r"|timeZone|externalCustomerId|tags|fields(\[(\d+)\](\.value|\.id)?)?|id|contacts): (.*)$",
    re.DOTALL,
)
_QUOTED = re.compile(r"^'(.*)' ", re.DOTALL)
_REQUIRED = re.compile(r"^custom field (\d+) \((.*)\) is required$", re.DOTALL)
_DELETED = re.compile(r"^contact \d+ was deleted")
_CELLS = re.compile(r"^row has (\d+) value\(s\) but the header has (\d+) column\(s\)$")
_LONGER = re.compile(r"must be at most (\d+) characters")


def _labels() -> dict[str, str]:
    return {
        "firstName": _("first name"),
        "lastName": _("last name"),
        "address": _("address"),
        "town": _("city"),
        "region": _("region"),
        "postcode": _("postcode"),
        "externalCustomerId": _("contact id"),
    }


def _split(reason: str) -> list[str]:
    """`field: problem; field: problem` → the pairs (a problem may itself hold "; ")."""
    parts: list[str] = []
    for part in reason.split("; "):
        if parts and not _FIELD.match(part):
            parts[-1] += "; " + part
        else:
            parts.append(part)
    return parts


def _item(data: dict, key: str, index: str | None) -> dict:
    items = data.get(key)
    if index is None or not isinstance(items, list) or int(index) >= len(items):
        return {}
    item = items[int(index)]
    return item if isinstance(item, dict) else {}


def _custom_field_name(field_id) -> str:
    try:
        field = CustomField.objects.filter(pk=int(field_id)).first()
    except (TypeError, ValueError):
        field = None
    return field.name if field is not None else str(field_id)


def _one(part: str, data: dict) -> str:
    if part == "a new contact needs an email or sms channel" or part.startswith(
        "channels: a new contact needs"
    ):
        return _("the row has no email address and no phone number, so no contact can be made")
    if _DELETED.match(part):
        return _(
            "this contact was deleted; tick “Restore deleted contacts” to bring it back with "
            "this import"
        )
    if match := _CELLS.match(part):
        return ngettext(
            "the row has %(cells)s cell but the header has %(columns)s columns",
            "the row has %(cells)s cells but the header has %(columns)s columns",
            int(match[1]),
        ) % {"cells": match[1], "columns": match[2]}
    if part.startswith("a value contains the NUL character"):
        return _("a cell holds an invisible NUL character, which cannot be stored")
    if part.startswith("a value has bytes that are not UTF-8"):
        return _("a cell has characters that cannot be read in the file's encoding")
    match = _FIELD.match(part)
    if match is None:
        return part
    field, problem = match[1], match[9]
    quoted = _QUOTED.match(problem)
    value = quoted[1] if quoted else ""
    longer = _LONGER.search(problem)
    if field.startswith("channels"):
        channel = _item(data, "channels", match[3])
        value = str(channel.get("value") or value)
        if channel.get("type") == "sms":
            return _("the phone number '%(value)s' is not a valid international number (+380…)") % {
                "value": value
            }
        if channel.get("type") == "email":
            if "@" not in value:
                return _("the email address '%(value)s' has no @") % {"value": value}
            return _("the email address '%(value)s' is not valid") % {"value": value}
    if field.startswith("fields"):
        required = _REQUIRED.match(problem)
        if required:
            return _(
                "the custom field '%(field)s' is required, and the row has no value for it"
            ) % {"field": required[2]}
        item = _item(data, "fields", match[7])
        name = _custom_field_name(item.get("id"))
        value = str(item.get("value") if item.get("value") is not None else value)
        kinds = (
            ("is not a number", _("a number")),
            ("must be a number", _("a number")),
            ("is not an ISO date", _("a date (YYYY-MM-DD)")),
            ("is not a yes/no value", _("yes or no")),
        )
        for words, expected in kinds:
            if words in problem:
                return _("the custom field '%(field)s' expects %(expected)s, got '%(value)s'") % {
                    "field": name,
                    "expected": expected,
                    "value": value,
                }
        allowed = re.search(r"allowed values \((.*)\)$", problem)
        if allowed:
            return _("the custom field '%(field)s' accepts only %(allowed)s, got '%(value)s'") % {
                "field": name,
                "allowed": allowed[1],
                "value": value,
            }
        if longer:
            return _("the custom field '%(field)s' is longer than %(limit)s characters") % {
                "field": name,
                "limit": longer[1],
            }
        if "no custom field with id" in problem:
            return _("a custom field of this file no longer exists")
    if field == "languageCode":
        return _("'%(value)s' is not a language code (such as en or uk)") % {"value": value}
    if field == "timeZone":
        return _("'%(value)s' is not a time zone (such as Europe/Kyiv)") % {"value": value}
    if field == "tags":
        return _("a tag is longer than 100 characters")
    if longer:
        key = match[5] if field.startswith("address.") else field
        label = _labels().get(key, key)
        return _("the %(field)s is longer than %(limit)s characters") % {
            "field": label,
            "limit": longer[1],
        }
    return part


def reason_for_people(reason: str, data: dict | None = None) -> str:
    """The stored `reason` of a failed row whose data is `data`, as the marketer reads it."""
    data = data if isinstance(data, dict) else {}
    return "; ".join(_one(part, data) for part in _split(reason))


# A job's stored description when the file as a whole stopped (contacts.csv_files,
# contacts.csv_import): English, as the import status API returns it; pages translate it.
_DESCRIPTIONS: list[tuple[re.Pattern, object]] = [
    (re.compile(r"^The uploaded file is missing\.$"), lambda m: _("The uploaded file is missing.")),
    (
        re.compile(r"^The import stopped on an internal error; it was logged\.$"),
        lambda m: _("The import stopped on an internal error; it was logged."),
    ),
    (
        re.compile(r"^The file is empty: it needs a header row and contacts\.$"),
        lambda m: _("The file is empty: it needs a header row and contacts."),
    ),
    (
        re.compile(r"^The file cannot be read as (\S+):"),
        lambda m: (
            _("The file cannot be read as %(encoding)s: choose its encoding again.")
            % {"encoding": m[1]}
        ),
    ),
    (
        re.compile(r"^The file is not UTF-8 \(byte (\d+) cannot be decoded\)"),
        lambda m: (
            _(
                "The file is not UTF-8 (byte %(byte)s cannot be read). Save it as “CSV UTF-8” or "
                "choose its encoding when you upload it."
            )
            % {"byte": m[1]}
        ),
    ),
    (
        re.compile(r"^The custom field mapped to column '(.*)' no longer exists", re.DOTALL),
        lambda m: (
            _(
                "The custom field mapped to the column “%(column)s” no longer exists; upload the "
                "file again to map its columns."
            )
            % {"column": m[1]}
        ),
    ),
    (
        re.compile(r"^The file has \d+ column\(s\) but \d+ were mapped"),
        lambda m: _("The file's columns changed after they were mapped; upload it again."),
    ),
    (
        re.compile(r"^The file is not valid CSV near line (\d+): (.*)$", re.DOTALL),
        lambda m: (
            _("The file is not valid CSV near line %(line)s (%(problem)s).")
            % {"line": m[1], "problem": m[2].rstrip(".")}
        ),
    ),
]


def description_for_people(description: str) -> str:
    """Why an import stopped as a whole, in the page's language when Herald wrote it."""
    for pattern, words in _DESCRIPTIONS:
        if match := pattern.match(description):
            return str(words(match))  # type: ignore[operator]
    return description
