"""Mapping a browser upload's columns to contact fields: what a column may become, the guess
from its header (in English, Ukrainian or Russian, as other tools export), and the stored
mapping's targets (contacts.csv_files.header_from_mapping reads the file with them).

A mapping is stored on the import as one key per file column: a contact field ("email",
"first_name", …), "field:<custom field id>", "tags", or "ignore".
"""

import re

from django.utils.translation import gettext_lazy as _

from contacts.csv_files import TAG_SEPARATORS, Target
from contacts.models import CustomField

IGNORE = "ignore"
TAGS = "tags"
FIELD_PREFIX = "field:"

# Key → (target, label), in the order the mapping screen offers them.
CONTACT_FIELDS: dict[str, tuple[Target, object]] = {
    "email": (("channel", "email"), _("Email")),
    "phone": (("channel", "sms"), _("Phone")),
    "first_name": (("firstName", None), _("First name")),
    "last_name": (("lastName", None), _("Last name")),
    "address": (("address", "address"), _("Address")),
    "town": (("address", "town"), _("City")),
    "region": (("address", "region"), _("Region")),
    "postcode": (("address", "postcode"), _("Postcode")),
    "language_code": (("languageCode", None), _("Language code")),
    "time_zone": (("timeZone", None), _("Time zone")),
    "external_id": (("externalCustomerId", None), _("Contact id (your own id)")),
}

# What a header says, normalised (_norm), → the key it maps to. The failed-rows report's
# own columns (row, reason) are ignored, so the report imports again as it is.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        [
            "email",
            "emailaddress",
            "mail",
            "emails",
            "електроннапошта",
            "електроннаадреса",
            "пошта",
            "емейл",
            "імейл",
            "электроннаяпочта",
            "почта",
            "емайл",
            "имейл",
            "адресэлектроннойпочты",
            "адресаелектронноїпошти",
        ],
        "email",
    ),
    **dict.fromkeys(
        [
            "phone",
            "sms",
            "mobile",
            "mobilephone",
            "phonenumber",
            "cellphone",
            "cell",
            "tel",
            "telephone",
            "телефон",
            "мобільний",
            "мобільнийтелефон",
            "номертелефону",
            "мобильный",
            "мобильныйтелефон",
            "номертелефона",
        ],
        "phone",
    ),
    **dict.fromkeys(["firstname", "first", "givenname", "forename", "імя", "имя"], "first_name"),
    **dict.fromkeys(
        ["lastname", "last", "surname", "familyname", "прізвище", "фамилия"], "last_name"
    ),
    **dict.fromkeys(
        ["address", "street", "streetaddress", "адреса", "адрес", "вулиця", "улица"], "address"
    ),
    **dict.fromkeys(["city", "town", "місто", "город"], "town"),
    **dict.fromkeys(
        ["region", "state", "province", "county", "область", "регіон", "регион"], "region"
    ),
    **dict.fromkeys(
        [
            "postcode",
            "zip",
            "zipcode",
            "postalcode",
            "індекс",
            "поштовийіндекс",
            "индекс",
            "почтовыйиндекс",
        ],
        "postcode",
    ),
    **dict.fromkeys(
        ["languagecode", "language", "lang", "locale", "мова", "язык"], "language_code"
    ),
    **dict.fromkeys(["timezone", "tz", "часовийпояс", "часовойпояс"], "time_zone"),
    **dict.fromkeys(
        ["contactid", "externalcustomerid", "externalid", "customerid", "clientid"], "external_id"
    ),
    **dict.fromkeys(["tags", "tag", "теги", "тег", "мітки", "метки"], TAGS),
    **dict.fromkeys(["row", "reason", "рядок", "причина", "строка"], IGNORE),
}


def _norm(name: str) -> str:
    """Case, spaces, punctuation and apostrophes do not matter: "E-mail", "Email Address",
    "Ім'я" and "first_name" are "email", "emailaddress", "імя" and "firstname"."""
    return re.sub(r"[\W_]+", "", name).lower()


def column_is_report_note(name: str) -> bool:
    """Whether the column is one the failed-rows report adds (row, reason)."""
    return ALIASES.get(_norm(name)) == IGNORE


def field_key(field: CustomField) -> str:
    return f"{FIELD_PREFIX}{field.id}"


def mapping_choices(custom_fields: list[CustomField]) -> list[tuple[str, object]]:
    """The select's options: grouped as the screen shows them."""
    return [
        (
            str(_("Contact fields")),
            [(key, label) for key, (_target, label) in CONTACT_FIELDS.items()],
        ),
        (
            str(_("Custom fields")),
            [(field_key(f), f"{f.name} ({f.group_key}.{f.key})") for f in custom_fields],
        ),
        (str(_("Other")), [(TAGS, _("Tags")), (IGNORE, _("Ignore this column"))]),
    ]


def column_guess(name: str, custom_fields: list[CustomField]) -> str:
    """The key a column named `name` maps to, or "ignore" when nothing fits."""
    normalised = _norm(name)
    if not normalised:
        return IGNORE
    if "." in name:
        group_key, _dot, key = name.strip().partition(".")
        for f in custom_fields:
            if (f.group_key.upper(), f.key.upper()) == (
                group_key.strip().upper(),
                key.strip().upper(),
            ):
                return field_key(f)
    if normalised in ALIASES:
        return ALIASES[normalised]
    for f in custom_fields:
        if normalised in (_norm(f.name), _norm(f.key)):
            return field_key(f)
    return IGNORE


def mapping_guess(names: list[str], custom_fields: list[CustomField]) -> list[str]:
    """A key per column; a target claimed by an earlier column leaves later ones ignored."""
    taken: set[str] = set()
    keys = []
    for name in names:
        key = column_guess(name, custom_fields)
        if key != IGNORE and key in taken:
            key = IGNORE
        taken.add(key)
        keys.append(key)
    return keys


def mapping_targets(
    keys: list[str], custom_fields: list[CustomField], tag_separator: str = ","
) -> list[Target | None]:
    """Stored keys → csv_files targets (None for an ignored column). A key naming a custom
    field that is gone stays a field target: the import then says which column lost it."""
    targets: list[Target | None] = []
    for key in keys:
        if key == IGNORE:
            targets.append(None)
        elif key == TAGS:
            targets.append(("tags", tag_separator))
        elif key.startswith(FIELD_PREFIX):
            targets.append(("field", int(key.removeprefix(FIELD_PREFIX))))
        else:
            targets.append(CONTACT_FIELDS[key][0])
    return targets


def mapping_problems(keys: list[str], names: list[str]) -> list[str]:
    """What stops the mapping from being imported, in words for the marketer."""
    problems = []
    seen: dict[str, str] = {}
    for key, name in zip(keys, names, strict=True):
        if key == IGNORE:
            continue
        if key in seen:
            problems.append(
                str(_("Columns “%(first)s” and “%(second)s” are mapped to the same field."))
                % {"first": seen[key], "second": name}
            )
        seen[key] = name
    if not {"email", "phone", "external_id"} & set(seen):
        problems.append(
            str(
                _(
                    "Map a column to Email, Phone or Contact id: "
                    "contacts are found and created by them."
                )
            )
        )
    return problems


def separator_of(choice: str) -> str:
    return TAG_SEPARATORS.get(choice, ",")
