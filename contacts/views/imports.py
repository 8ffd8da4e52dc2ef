"""Marketer pages for CSV import (upload, column mapping, live progress, failed-rows report)
and CSV export."""

import json

from django import forms
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.core.csv_safe import csv_lines
from config.core.db_router import replica_reading
from config.core.roles import Role, role_required
from contacts import export
from contacts.bulk.jobs import import_job_fail
from contacts.csv_dialect import (
    DELIMITERS,
    ENCODINGS,
    SAMPLE_BYTES,
    Preview,
    csv_detect,
    csv_preview,
)
from contacts.csv_files import TAG_SEPARATORS, failure_cells, upload_sample
from contacts.csv_mapping import (
    FIELD_PREFIX,
    IGNORE,
    column_is_report_note,
    mapping_choices,
    mapping_guess,
    mapping_problems,
)
from contacts.custom_fields import custom_field_columns, custom_field_create
from contacts.errors import CustomFieldError
from contacts.fetch import MAX_DOWNLOAD_BYTES, redact_url
from contacts.import_reasons import description_for_people, reason_for_people
from contacts.imports import csv_upload_confirm, csv_upload_start, upload_awaits_mapping
from contacts.models import CustomField, CustomFieldType, ImportJob, ImportStatus, Segment
from contacts.validation import import_options_parse

RECENT_IMPORTS = 20
FAILURES_SHOWN = 50

# Form values for the delimiters (a tab travels badly in a form field).
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
TAG_SEPARATOR_LABELS = {
    "comma": _("Comma (,)"),
    "semicolon": _("Semicolon (;)"),
    "pipe": _("Pipe (|)"),
    "space": _("Space"),
}
# A field made on the mapping screen: the types a name alone defines (a choice field needs
# its values, made on the custom fields page).
NEW_FIELD_TYPES = [
    (CustomFieldType.TEXT, _("Text")),
    (CustomFieldType.NUMBER, _("Number")),
    (CustomFieldType.DATE, _("Date")),
    (CustomFieldType.BOOLEAN, _("Yes/no")),
]


def _status_labels() -> dict[str, str]:
    return {
        ImportStatus.STARTED: gettext("Waiting"),
        ImportStatus.IMPORTING: gettext("Importing"),
        ImportStatus.FINISHED: gettext("Finished"),
        ImportStatus.ERROR: gettext("Failed"),
    }


def _names(text: str) -> list[str]:
    return [name.strip() for line in text.splitlines() for name in line.split(",") if name.strip()]


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "The first row names the columns; you match them to contact fields on the next "
            "screen. Comma, semicolon, tab or pipe separated; UTF-8, UTF-16, Windows-1251 or "
            "Windows-1252. Up to 100 MB."
        ),
    )
    dedupe_on = forms.ChoiceField(
        label=_("Find existing contacts by"),
        choices=[
            ("email", _("Email")),
            ("sms", _("Phone")),
            ("email_or_sms", _("Email, else phone")),
        ],
        initial="email",
        help_text=_("A row with a contact id (your own id) is always matched by it."),
    )
    group_names = forms.CharField(
        label=_("Add to segments"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Names, separated by commas or lines; missing static segments are created."),
    )
    group_names_exclude = forms.CharField(
        label=_("Remove from segments"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    restore_deleted = forms.BooleanField(label=_("Restore deleted contacts"), required=False)
    event_key = forms.CharField(
        label=_("Event for new contacts"),
        required=False,
        max_length=100,
        help_text=_(
            "Optional: the key of an event sent for each new contact (it can start workflows)."
        ),
    )

    _OPTION_FIELDS = {
        "dedupeOn": "dedupe_on",
        "groupNames": "group_names",
        "groupNamesExclude": "group_names_exclude",
        "restoreDeleted": "restore_deleted",
        "eventKeyForNewContacts": "event_key",
    }

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        if uploaded.size > MAX_DOWNLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than the %(limit)s MB limit.")
                % {"limit": MAX_DOWNLOAD_BYTES // (1024 * 1024)}
            )
        if uploaded.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return uploaded

    def clean(self):
        data = super().clean()
        options, errors = import_options_parse(
            {
                "dedupeOn": data.get("dedupe_on"),
                "groupNames": _names(data.get("group_names") or ""),
                "groupNamesExclude": _names(data.get("group_names_exclude") or ""),
                "restoreDeleted": bool(data.get("restore_deleted")),
                "eventKeyForNewContacts": data.get("event_key") or None,
            }
        )
        for field, problem in errors:
            self.add_error(self._OPTION_FIELDS.get(field), problem)
        data["options"] = options
        return data


@role_required(Role.MARKETER)
def import_home(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = csv_upload_start(
            uploaded=form.cleaned_data["file"],
            options=form.cleaned_data["options"],
            created_by=request.user,
        )
        return redirect("import_mapping", session_id=job.session_id)
    jobs = list(ImportJob.objects.select_related("created_by")[:RECENT_IMPORTS])
    labels = _status_labels()
    for job in jobs:
        job.status_label = (
            gettext("Columns to map") if upload_awaits_mapping(job) else labels[job.status]
        )
    return render(
        request,
        "contacts/import.html",
        {"form": form, "jobs": jobs},
        status=400 if form.errors else 200,
    )


class MappingForm(forms.Form):
    """The confirmed reading of an upload: encoding, delimiter, tag separator, a target per
    column; and a custom field to make for one column."""

    encoding = forms.ChoiceField(label=_("Encoding"), choices=list(ENCODINGS.items()))
    delimiter = forms.ChoiceField(
        label=_("Delimiter"),
        choices=[(DELIMITER_NAMES[d], label) for d, label in DELIMITERS.items()],
    )
    tag_separator = forms.ChoiceField(
        label=_("Tags in a cell are separated by"),
        choices=list(TAG_SEPARATOR_LABELS.items()),
        initial="comma",
    )
    new_field_column = forms.TypedChoiceField(
        label=_("For the column"), required=False, coerce=int, empty_value=None
    )
    new_field_name = forms.CharField(label=_("Field name"), required=False, max_length=100)
    new_field_type = forms.ChoiceField(
        label=_("Type"), required=False, choices=NEW_FIELD_TYPES, initial=CustomFieldType.TEXT
    )

    def __init__(self, *args, names: list[str], custom_fields: list[CustomField], **kwargs):
        super().__init__(*args, **kwargs)
        self.names = names
        choices = mapping_choices(custom_fields)
        for position, name in enumerate(names):
            self.fields[f"column_{position}"] = forms.ChoiceField(
                label=name or gettext("Column %(number)s") % {"number": position + 1},
                choices=choices,
                initial=IGNORE,
            )
        self.fields["new_field_column"].choices = [
            (position, name or gettext("Column %(number)s") % {"number": position + 1})
            for position, name in enumerate(names)
        ]

    def column_fields(self):
        return [self[f"column_{position}"] for position in range(len(self.names))]

    def keys(self) -> list[str]:
        return [self.cleaned_data[f"column_{position}"] for position in range(len(self.names))]


def _choice(value: str | None, allowed, default: str) -> str:
    return value if value in allowed else default


def _mapping_initial(
    preview: Preview, keys: list[str], tag_separator: str = "comma"
) -> dict[str, object]:
    initial: dict[str, object] = {
        "encoding": preview.encoding,
        "delimiter": DELIMITER_NAMES[preview.delimiter],
        "tag_separator": tag_separator,
        "new_field_type": CustomFieldType.TEXT,
    }
    initial.update({f"column_{position}": key for position, key in enumerate(keys)})
    # The first column nothing fits offers itself for a new field (not the failed-rows
    # report's own row and reason).
    unmapped = [
        position
        for position, key in enumerate(keys)
        if key == IGNORE and not column_is_report_note(preview.header[position])
    ]
    if unmapped:
        initial["new_field_column"] = unmapped[0]
        initial["new_field_name"] = preview.header[unmapped[0]]
    return initial


def _field_for_column(name: str, field_type: str) -> CustomField:
    """A custom field made from the mapping screen; its CSV key comes from the name, made
    unique (a Cyrillic name has no Latin key: FIELD, FIELD_2, …)."""
    base = slugify(name).upper().replace("-", "_")[:90] or "FIELD"
    key, number = base, 1
    while CustomField.objects.filter(group_key="PERSONAL", key=key).exists():
        number += 1
        key = f"{base}_{number}"
    return custom_field_create(name=name, key=key, type=field_type)


@role_required(Role.MARKETER)
def import_mapping(request, session_id):
    """The mapping screen: the file's encoding and delimiter (detected, changeable, with a
    preview), a target per column, a custom field made on the spot; then the import."""
    job = get_object_or_404(ImportJob, session_id=session_id)
    if not upload_awaits_mapping(job):
        return redirect("import_detail", session_id=job.session_id)
    # The mapping screen reads the file's first bytes only, from the storage the upload went to.
    sample = upload_sample(job, SAMPLE_BYTES)
    if sample is None:
        import_job_fail(job_id=job.pk, description="The uploaded file is missing.")
        return redirect("import_detail", session_id=job.session_id)
    custom_fields = custom_field_columns()
    data = request.POST if request.method == "POST" else None
    action = (data or {}).get("action", "import")
    if data is None:
        encoding, delimiter = csv_detect(sample)
    else:
        encoding = _choice(data.get("encoding"), ENCODINGS, "utf-8")
        delimiter = _choice(
            {name: d for d, name in DELIMITER_NAMES.items()}.get(data.get("delimiter", "")),
            DELIMITERS,
            ",",
        )
    preview = csv_preview(sample, encoding, delimiter)
    tag_separator = _choice((data or {}).get("tag_separator"), TAG_SEPARATORS, "comma")
    problems: list[str] = []
    form: MappingForm | None = None
    new_field: dict = {}
    if data is None or action == "preview":
        keys = mapping_guess(preview.header, custom_fields)
    elif action == "create_field":
        keys = [data.get(f"column_{position}", IGNORE) for position in range(len(preview.header))]
        column_text = data.get("new_field_column", "")
        column = int(column_text) if column_text.isdigit() else None
        name = data.get("new_field_name", "").strip()
        field_type = _choice(
            data.get("new_field_type"), dict(NEW_FIELD_TYPES), CustomFieldType.TEXT
        )
        new_field = {
            "new_field_column": column,
            "new_field_name": name,
            "new_field_type": field_type,
        }
        if column is None or column >= len(keys) or not name:
            problems.append(gettext("Give the new field a name and choose its column."))
        else:
            try:
                created = _field_for_column(name, field_type)
            except CustomFieldError as exc:
                problems.append(
                    gettext("The field was not created: %(problem)s") % {"problem": exc.message}
                )
            else:
                custom_fields = custom_field_columns()
                keys[column] = f"{FIELD_PREFIX}{created.pk}"
                new_field = {}
    else:
        form = MappingForm(data, names=preview.header, custom_fields=custom_fields)
        if form.is_valid() and not preview.problem:
            keys = form.keys()
            problems = mapping_problems(keys, preview.header)
            if not problems and csv_upload_confirm(
                job=job,
                mapping=keys,
                encoding=encoding,
                delimiter=delimiter,
                tag_separator=TAG_SEPARATORS[form.cleaned_data["tag_separator"]],
            ):
                return redirect("import_detail", session_id=job.session_id)
            if not problems:
                return redirect("import_detail", session_id=job.session_id)
    if form is None:
        form = MappingForm(
            initial={**_mapping_initial(preview, keys, tag_separator), **new_field},
            names=preview.header,
            custom_fields=custom_fields,
        )
    columns = [
        (field, [row[position] for row in preview.rows])
        for position, field in enumerate(form.column_fields())
    ]
    context = {
        "job": job,
        "form": form,
        "preview": preview,
        "columns": columns,
        "problems": problems,
        "detected_encoding": ENCODINGS.get(preview.encoding),
        "detected_delimiter": DELIMITERS.get(preview.delimiter),
    }
    if request.headers.get("HX-Request"):
        # htmx swaps only a 2xx answer in; the form carries its problems either way.
        return render(request, "contacts/import_mapping_form.html", context)
    refused = bool(problems) or (data is not None and action == "import")
    return render(request, "contacts/import_mapping.html", context, status=400 if refused else 200)


def _job_context(job: ImportJob) -> dict:
    done = job.status in (ImportStatus.FINISHED, ImportStatus.ERROR)
    percent = 100 if done else (int(job.processed * 100 / job.total) if job.total else 0)
    return {
        "job": job,
        "done": done,
        "percent": min(percent, 100),
        "status_label": _status_labels()[job.status],
        "stopped_because": description_for_people(job.description)
        if job.status == ImportStatus.ERROR
        else "",
        "source": redact_url(job.source_url) if job.source_url else job.payload.get("fileName"),
    }


@role_required(Role.MARKETER)
def import_detail(request, session_id):
    job = get_object_or_404(ImportJob, session_id=session_id)
    if upload_awaits_mapping(job):
        return redirect("import_mapping", session_id=job.session_id)
    context = _job_context(job)
    context["failures"] = [
        (failure.index, reason_for_people(failure.reason, failure.data))
        for failure in job.failures.all()[:FAILURES_SHOWN]
    ]
    return render(request, "contacts/import_detail.html", context)


@role_required(Role.MARKETER)
def import_progress(request, session_id):
    """The polled fragment; once the job is done it renders without the polling trigger."""
    job = get_object_or_404(ImportJob, session_id=session_id)
    context = _job_context(job)
    response = render(request, "contacts/import_progress.html", context)
    if context["done"] and request.headers.get("HX-Request"):
        # Only a page that was still polling asks; one reload shows the final failed rows.
        response["HX-Refresh"] = "true"
    return response


@role_required(Role.MARKETER)
def import_failures_csv(request, session_id):
    """Failed rows; for a file import in the file's own columns after `row` and `reason`, so
    the marketer can fix them and upload the file again as it is (the mapping screen ignores
    `row` and `reason`). Reasons are worded for people, in the page's language."""
    job = get_object_or_404(ImportJob, session_id=session_id)
    columns = job.payload.get("columns") if job.kind == "file" else None

    def rows():
        yield ["row", "reason", *columns] if columns else ["index", "reason", "data"]
        for failure in job.failures.order_by("index").iterator(chunk_size=2000):
            cells = failure_cells(failure.data, columns) if columns else None
            if cells is None:
                data = failure.data
                if isinstance(data, dict) and "cells" in data:
                    data = {k: v for k, v in data.items() if k != "cells"}
                cells = [json.dumps(data, ensure_ascii=False)]
            yield [failure.index, reason_for_people(failure.reason, failure.data), *cells]

    response = StreamingHttpResponse(csv_lines(rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.session_id}-failed.csv"'
    return response


@role_required(Role.MARKETER)
@replica_reading
def contacts_export_csv(request):
    segment = None
    segment_id = request.GET.get("segment")
    if segment_id:
        if not segment_id.isdigit():
            raise Http404("No such segment.")
        segment = get_object_or_404(Segment, pk=int(segment_id))
    queryset = export.contacts_for_export(segment)
    response = StreamingHttpResponse(
        export.export_csv_lines(queryset), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    name = f"contacts-segment-{segment.pk}-{stamp}.csv" if segment else f"contacts-{stamp}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
