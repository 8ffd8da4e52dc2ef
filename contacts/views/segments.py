"""Marketer pages for segments: the list, static members, and the dynamic filter builder with
its live reach. Writes go through `contacts.segments`; the filter language is judged by
`contacts.filters.compiler` alone."""

import json
import re
import secrets

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from config.core.errors import form_error
from config.core.parsers import json_text_load
from config.core.roles import Role, has_role, role_required
from contacts import segments as segment_services
from contacts.channels import email_normalise
from contacts.errors import ContactsRuleError
from contacts.filters.builder import (
    Catalog,
    Row,
    filter_from_rows,
    row_index_for,
    rows_from_filter,
    rows_from_post,
)
from contacts.filters.compiler import FilterError, filter_reach, segment_contacts, segment_reach
from contacts.forms import MembersAddForm, SegmentEditForm, SegmentForm
from contacts.models import Contact, Segment, SegmentKind
from contacts.paging import keyset_page, page_count
from contacts.segment_members import segment_members_summary


@role_required(Role.VIEWER)
def segment_list(request):
    segments = Segment.objects.all()
    return render(
        request,
        "contacts/segment_list.html",
        {"segments": segments, "can_write": has_role(request.user, Role.MARKETER)},
    )


@role_required(Role.VIEWER)
def segment_reach_badge(request, pk: int):
    """The reach of one segment, loaded by the list row after the page: a dynamic segment's
    count is a query over all contacts, and a list of them must not wait for every count."""
    segment = get_object_or_404(Segment, pk=pk)
    try:
        reach = segment_reach(segment)
    except FilterError as exc:
        # The path quotes keys of a filter someone typed: escaped like any user text.
        return HttpResponse(format_html('<span class="error">filter error at {}</span>', exc.path))
    return HttpResponse(
        format_html(
            '<span data-testid="segment-reach">{}</span>', number_format(reach, force_grouping=True)
        )
    )


@role_required(Role.MARKETER)
def segment_create(request):
    form = SegmentForm(request.POST or None, initial={"kind": SegmentKind.STATIC})
    if request.method == "POST" and form.is_valid():
        try:
            segment = segment_services.segment_create(**form.cleaned_data)
        except ContactsRuleError as exc:
            form_error(form, exc)
        else:
            messages.success(request, gettext("Segment %(name)s created.") % {"name": segment.name})
            return redirect("segment_detail", pk=segment.pk)
    return render(request, "contacts/segment_form.html", {"form": form})


@role_required(Role.MARKETER)
def segment_edit(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk)
    form = SegmentEditForm(request.POST or None, instance=Segment.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            segment_services.segment_update(segment=segment, **form.cleaned_data)
        except ContactsRuleError as exc:
            form_error(form, exc)
        else:
            messages.success(request, gettext("Segment %(name)s saved.") % {"name": segment.name})
            return redirect("segment_detail", pk=segment.pk)
    return render(request, "contacts/segment_form.html", {"form": form, "segment": segment})


@require_POST
@role_required(Role.MARKETER)
def segment_delete(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk)
    try:
        segment_services.segment_delete(segment=segment)
    except ContactsRuleError as exc:
        messages.error(
            request,
            gettext("Segment %(name)s was not deleted: %(problem)s.")
            % {"name": segment.name, "problem": exc.message},
        )
        return redirect("segment_detail", pk=pk)
    messages.success(request, gettext("Segment %(name)s deleted.") % {"name": segment.name})
    return redirect("segments_home")


@role_required(Role.VIEWER)
def segment_detail(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk)
    if segment.kind == SegmentKind.STATIC:
        return _static_page(request, segment)
    return _dynamic_page(request, segment)


# -- static segments -------------------------------------------------------------------------


def _static_page(request, segment, *, form=None, report=None, status=200):
    members = segment_contacts(segment)
    page = keyset_page(members, request.GET)
    count, exact = page_count(members, page)
    params = request.GET.copy()
    params.pop("after", None)
    params.pop("before", None)
    return render(
        request,
        "contacts/segment_static.html",
        {
            "segment": segment,
            "page": page,
            "count": count,
            "count_exact": exact,
            "base_query": params.urlencode(),
            "form": form or MembersAddForm(),
            "report": report,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


def _resolve_members(items: list[str]) -> tuple[list[int], list[dict]]:
    """Contact ids for pasted lines (ids or email addresses) and the lines that name nobody."""
    ids: list[int] = []
    emails: dict[str, str] = {}
    problems: list[dict] = []
    for item in items:
        if item.isdigit():
            ids.append(int(item))
            continue
        email, problem = email_normalise(item)
        if problem:
            problems.append(
                {"item": item, "reason": gettext("neither a contact id nor an email address")}
            )
        else:
            emails[email] = item
    if emails:
        # Every active contact with the address: dedupe by external id can leave several.
        found: dict[str, list[int]] = {}
        for email, contact_id in (
            Contact.objects.alive().filter(email__in=list(emails)).values_list("email", "pk")
        ):
            found.setdefault(email, []).append(contact_id)
        for email, item in emails.items():
            if email in found:
                ids.extend(found[email])
            else:
                problems.append(
                    {"item": item, "reason": gettext("no contact has this email address")}
                )
    return list(dict.fromkeys(ids)), problems


@transaction.atomic
def _attach_in_batches(segment: Segment, ids: list[int]) -> dict:
    """segment_attach takes at most MEMBERSHIP_MAX_IDS ids (the eSputnik v1 API's limit); a
    pasted list may be longer, so it goes in batches that succeed or fail together."""
    total = {"attached": 0, "alreadyMembers": 0, "notFound": []}
    step = segment_services.MEMBERSHIP_MAX_IDS
    for start in range(0, len(ids), step):
        result = segment_services.segment_attach(
            segment=segment, contact_ids=ids[start : start + step]
        )
        total["attached"] += result["attached"]
        total["alreadyMembers"] += result["alreadyMembers"]
        total["notFound"] += result["notFound"]
    return total


@require_POST
@role_required(Role.MARKETER)
def members_add(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk, kind=SegmentKind.STATIC)
    form = MembersAddForm(request.POST)
    if not form.is_valid():
        return _static_page(request, segment, form=form, status=400)
    ids, problems = _resolve_members(form.cleaned_data["contacts"])
    attached = already = 0
    if ids:
        try:
            result = _attach_in_batches(segment, ids)
        except ContactsRuleError as exc:
            form.add_error("contacts", exc.message)
            return _static_page(request, segment, form=form, status=400)
        attached, already = result["attached"], result["alreadyMembers"]
        problems += [
            {"item": str(key), "reason": gettext("no active contact has this id")}
            for key in result["notFound"]
        ]
    if problems:
        report = {"attached": attached, "already": already, "problems": problems}
        retry = MembersAddForm(initial={"contacts": "\n".join(p["item"] for p in problems)})
        return _static_page(request, segment, form=retry, report=report, status=400)
    text = ngettext(
        "%(count)s contact added to %(name)s.",
        "%(count)s contacts added to %(name)s.",
        attached,
    ) % {"count": attached, "name": segment.name}
    if already:
        text += " " + ngettext(
            "%(count)s was already in it.", "%(count)s were already in it.", already
        ) % {"count": already}
    messages.success(
        request,
        text,
    )
    return redirect("segment_detail", pk=pk)


@require_POST
@role_required(Role.MARKETER)
def members_remove(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk, kind=SegmentKind.STATIC)
    ids = [value for value in request.POST.getlist("contact") if value.isdigit()]
    if request.POST.get("all") == "1":
        result = segment_services.segment_detach(segment=segment)
    elif ids:
        try:
            result = segment_services.segment_detach(segment=segment, contact_ids=ids)
        except ContactsRuleError as exc:
            messages.error(request, exc.message)
            return redirect("segment_detail", pk=pk)
    else:
        messages.error(request, gettext("Choose the contacts to remove."))
        return redirect("segment_detail", pk=pk)
    messages.success(
        request,
        ngettext(
            "%(count)s contact removed from %(name)s.",
            "%(count)s contacts removed from %(name)s.",
            result["detached"],
        )
        % {"count": result["detached"], "name": segment.name},
    )
    return redirect("segment_detail", pk=pk)


# -- dynamic segments: the filter builder ----------------------------------------------------


class BuiltFilter:
    """What the builder says: rows or raw JSON → a filter, with errors placed on the rows."""

    def __init__(self, *, catalog: Catalog, mode: str, combinator: str, rows, json_text: str):
        self.catalog = catalog
        self.mode = mode
        self.combinator = combinator
        self.rows: list[Row] = rows
        self.json_text = json_text
        self.error = ""
        self.skipped: list[int] = []
        self.filter: dict | None = None

    @classmethod
    def from_post(cls, data, *, segment_id: int | None, strict: bool) -> "BuiltFilter":
        catalog = Catalog(exclude_segment=segment_id)
        built = cls(
            catalog=catalog,
            mode="json" if data.get("mode") == "json" else "rows",
            combinator="or" if data.get("combinator") == "or" else "and",
            rows=rows_from_post(catalog, data),
            json_text=data.get("filter_json", ""),
        )
        if built.mode == "json":
            built._from_json()
            return built
        built.filter, built.skipped = filter_from_rows(built.rows, built.combinator, strict=strict)
        if strict and any(row.error for row in built.rows):
            built.error = gettext("Some conditions need a value.")
            built.filter = None
        else:
            built.json_text = _pretty(built.filter)
        return built

    @classmethod
    def from_saved(cls, segment: Segment) -> "BuiltFilter":
        catalog = Catalog(exclude_segment=segment.pk)
        saved = segment.filter or {}
        parsed = rows_from_filter(catalog, saved)
        combinator, rows = parsed if parsed is not None else ("and", [])
        built = cls(
            catalog=catalog,
            # A filter the rows cannot express opens in the JSON editor, never half-shown.
            mode="rows" if parsed is not None else "json",
            combinator=combinator,
            rows=rows,
            json_text=_pretty(saved),
        )
        built.filter = saved
        return built

    def _from_json(self) -> None:
        text = self.json_text.strip() or "{}"
        try:
            value = json_text_load(text)
        except json.JSONDecodeError as exc:
            self.error = (
                f"filter: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            )
            return
        if not isinstance(value, dict):
            self.error = 'filter: must be a JSON object, e.g. {"tags": {"$in": ["vip"]}}'
            return
        self.filter = value

    def place_error(self, path: str, message: str) -> None:
        """Show a filter error on the row it concerns, and always name the path."""
        self.error = f"{path}: {message}"
        if self.mode == "rows":
            used = [i for i in range(len(self.rows)) if i not in self.skipped]
            index = row_index_for(path, used)
            if index is not None:
                self.rows[index].error = message

    def reach(self) -> int | None:
        if self.filter is None:
            return None
        try:
            return filter_reach(self.filter)
        except FilterError as exc:
            self.place_error(exc.path, exc.message)
            return None


def _pretty(filter_: dict | None) -> str:
    return json.dumps(filter_ or {}, indent=2, ensure_ascii=False)


def _dynamic_page(request, segment, *, built=None, status=200):
    built = built or BuiltFilter.from_saved(segment)
    reach = built.reach()
    return render(
        request,
        "contacts/segment_dynamic.html",
        {
            "segment": segment,
            "catalog": built.catalog,
            "built": built,
            "reach": reach,
            "can_write": has_role(request.user, Role.MARKETER),
            **segment_members_summary(segment=segment),
        },
        status=status,
    )


@require_POST
@role_required(Role.VIEWER)
def filter_reach_preview(request):
    """Live reach as the marketer edits rows (htmx). A read, so viewers may use it too."""
    segment_id = request.POST.get("segment", "")
    built = BuiltFilter.from_post(
        request.POST, segment_id=int(segment_id) if segment_id.isdigit() else None, strict=False
    )
    reach = None if built.error else built.reach()
    return render(
        request,
        "contacts/_reach.html",
        {"built": built, "reach": reach, "oob_json": built.mode == "rows"},
    )


ROW_ID = re.compile(r"[a-z0-9]{1,16}")


@role_required(Role.VIEWER)
def filter_row(request):
    """One builder row, for "Add a condition" and when a row's field changes (its operators
    and value input depend on the field)."""
    segment_id = request.GET.get("segment", "")
    catalog = Catalog(exclude_segment=int(segment_id) if segment_id.isdigit() else None)
    row = catalog.row(
        request.GET.get("field", ""), request.GET.get("op", ""), request.GET.get("value", "")
    )
    if request.GET.get("field") and row.spec.key != request.GET.get("field"):
        row.error = gettext("unknown field")
    # A re-rendered row keeps its id, so focus can return to the control the marketer was on;
    # a new row gets a fresh one.
    row_id = request.GET.get("row", "")
    if not ROW_ID.fullmatch(row_id):
        row_id = "n" + secrets.token_hex(4)
    response = render(
        request,
        "contacts/_filter_row.html",
        {
            "row": row,
            "row_id": row_id,
            "catalog": catalog,
            "segment_id": segment_id if segment_id.isdigit() else "",
        },
    )
    # The row's operators changed under the marketer's eyes: recount with the new row.
    response["HX-Trigger-After-Settle"] = "filterChanged"
    return response


@require_POST
@role_required(Role.MARKETER)
def segment_filter_save(request, pk: int):
    segment = get_object_or_404(Segment, pk=pk, kind=SegmentKind.DYNAMIC)
    built = BuiltFilter.from_post(request.POST, segment_id=segment.pk, strict=True)
    if built.filter is None:
        return _dynamic_page(request, segment, built=built, status=400)
    try:
        segment_services.segment_update(segment=segment, filter=built.filter)
    except ContactsRuleError as exc:
        path = exc.field.removeprefix("filter.") if exc.field != "filter" else "filter"
        built.place_error(path, exc.message)
        segment.refresh_from_db()
        return _dynamic_page(request, segment, built=built, status=400)
    messages.success(request, gettext("Filter of %(name)s saved.") % {"name": segment.name})
    return redirect("segment_detail", pk=pk)
