"""Marketer pages for CSV import (upload, live progress, failed-rows report) and CSV export."""

import csv
import json

from django import forms
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from config.core.roles import Role, role_required
from contacts import export
from contacts.csv_files import STANDARD_HEADERS, failure_cells
from contacts.fetch import MAX_DOWNLOAD_BYTES, redact_url
from contacts.imports import csv_upload_start
from contacts.models import ImportJob, ImportStatus, Segment
from contacts.validation import import_options_parse

RECENT_IMPORTS = 20
FAILURES_SHOWN = 50


def _names(text: str) -> list[str]:
    return [name.strip() for line in text.splitlines() for name in line.split(",") if name.strip()]


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, comma-separated, first row = column names. Up to 100 MB.",
    )
    dedupe_on = forms.ChoiceField(
        label="Find existing contacts by",
        choices=[("email", "Email"), ("sms", "Phone (Sms)"), ("email_or_sms", "Email, else phone")],
        initial="email",
        help_text="A row with a Contact id is always matched by it.",
    )
    group_names = forms.CharField(
        label="Add to segments",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Names, separated by commas or lines; missing static segments are created.",
    )
    group_names_exclude = forms.CharField(
        label="Remove from segments",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    restore_deleted = forms.BooleanField(label="Restore deleted contacts", required=False)
    event_key = forms.CharField(
        label="Event for new contacts",
        required=False,
        max_length=100,
        help_text="Optional event type key emitted for each new contact (starts workflows).",
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
                f"The file is larger than the {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB limit."
            )
        if uploaded.size == 0:
            raise forms.ValidationError("The file is empty.")
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
        return redirect("import_detail", session_id=job.session_id)
    jobs = ImportJob.objects.select_related("created_by")[:RECENT_IMPORTS]
    return render(
        request,
        "contacts/import.html",
        {"form": form, "jobs": jobs, "columns": STANDARD_HEADERS},
        status=400 if form.errors else 200,
    )


def _job_context(job: ImportJob) -> dict:
    done = job.status in (ImportStatus.FINISHED, ImportStatus.ERROR)
    percent = 100 if done else (int(job.processed * 100 / job.total) if job.total else 0)
    return {
        "job": job,
        "done": done,
        "percent": min(percent, 100),
        "source": redact_url(job.source_url) if job.source_url else job.payload.get("fileName"),
    }


@role_required(Role.MARKETER)
def import_detail(request, session_id):
    job = get_object_or_404(ImportJob, session_id=session_id)
    context = _job_context(job)
    context["failures"] = job.failures.all()[:FAILURES_SHOWN]
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
    the marketer can fix them and import the rest (without those two columns) again."""
    job = get_object_or_404(ImportJob, session_id=session_id)
    writer = csv.writer(export._Echo())
    columns = job.payload.get("columns") if job.kind == "file" else None

    def lines():
        yield "\ufeff"
        if columns:
            yield writer.writerow(["row", "reason", *columns])
        else:
            yield writer.writerow(["index", "reason", "data"])
        for failure in job.failures.order_by("index").iterator(chunk_size=2000):
            cells = failure_cells(failure.data, columns) if columns else None
            if cells is None:
                cells = [json.dumps(failure.data, ensure_ascii=False)]
            yield writer.writerow(
                [failure.index, *(export.cell_neutralise(c) for c in [failure.reason, *cells])]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.session_id}-failed.csv"'
    return response


@role_required(Role.MARKETER)
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
