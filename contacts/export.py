"""CSV export of contacts, in the import's own format so an export re-imports unchanged.

Columns: the eSputnik v1 API's standard columns, `Tags` (joined by ", "), then one
`GROUP_KEY.KEY` column per custom field.
Rows are read in keyset pages by id and written as they are read, so a million contacts
stream in constant memory without a long-lived server-side cursor.
"""

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from config.core.csv_safe import csv_lines
from contacts.csv_files import STANDARD_HEADERS, TAGS_HEADER
from contacts.custom_fields import custom_field_columns
from contacts.filters.compiler import segment_contacts
from contacts.models import Contact, Segment

EXPORT_PAGE = 5000  # rows per query: big enough to amortise the round trip, small in memory

_STANDARD = (
    "first_name",
    "last_name",
    "address",
    "region",
    "town",
    "postcode",
    "email",
    "phone",
    "language_code",
    "time_zone",
    "external_customer_id",
)


def contacts_for_export(segment: Segment | None = None) -> QuerySet[Contact]:
    if segment is None:
        return Contact.objects.alive()
    return segment_contacts(segment)


def export_rows(queryset: QuerySet[Contact]) -> Iterator[list[Any]]:
    fields = custom_field_columns()
    field_keys = [str(f.id) for f in fields]
    yield [*STANDARD_HEADERS, TAGS_HEADER] + [f"{f.group_key}.{f.key}" for f in fields]
    last_id = 0
    while True:
        page = list(
            queryset.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", *_STANDARD, "tags", "fields")[:EXPORT_PAGE]
        )
        if not page:
            return
        for row in page:
            values = row[1:-2]
            tags = ", ".join(row[-2] or [])
            custom = row[-1] or {}
            yield [*values, tags, *(custom.get(key) for key in field_keys)]
        last_id = page[-1][0]


def export_csv_lines(queryset: QuerySet[Contact]) -> Iterator[str]:
    """CSV text, one row at a time, every cell made inert (config.core.csv_safe, whose rule the
    importer undoes so the file imports back unchanged)."""
    return csv_lines(export_rows(queryset))
