"""Marketer pages for contacts, custom fields and the unsubscribed list (the suppression
list's page is contacts.views.suppressions).

Views parse input with forms and call the services in `contacts.services` /
`contacts.segments` for every write; the rules (validation, dedupe, audit) live there.
"""

from django.contrib import messages
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Upper
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_POST

from config.core.errors import form_error
from config.core.roles import Role, has_role, role_required
from contacts import contact_actions, custom_fields, services, unsubscribed
from contacts import segments as segment_services
from contacts.contact_actions import INLINE_MAX, BulkAction
from contacts.errors import ContactError, ContactsRuleError
from contacts.filters.compiler import FilterError, segment_contacts
from contacts.forms import (
    BulkActionForm,
    ContactFilterForm,
    ContactForm,
    CustomFieldForm,
    UnsubscribedAddForm,
)
from contacts.models import (
    ChannelType,
    Contact,
    ContactSource,
    CustomField,
    Segment,
    SegmentKind,
    Unsubscribed,
)
from contacts.paging import (
    PAGE_SIZES,
    capped_count,
    keyset_page,
    numbered_page,
    page_count,
    page_size,
)
from contacts.privacy import contact_export_filename, contact_export_stream
from contacts.suppression import suppressions_for_contact
from contacts.tasks import contacts_bulk_action

# The detail page checks this many dynamic segments for membership.
DYNAMIC_SEGMENTS_CHECKED = 50


def _back(request, default: str):
    """Redirect to a local `next` (e.g. the contact page a button was on), else `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def _query_without(request, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


# The list's sortable columns: ?sort=<key> ascending, ?sort=-<key> descending. Each leads with
# an indexed expression (upper(last_name), email, phone, created_at) and ends on the primary
# key, so pages are stable when values repeat.
SORTS = {
    "name": (Upper("last_name"), Upper("first_name")),
    "email": (F("email"),),
    "phone": (F("phone"),),
    "created": (F("created_at"),),
    "updated": (F("updated_at"),),
}
DEFAULT_SORT = "-created"
SORT_LABELS = {
    "name": pgettext_lazy("person", "Name"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
    "created": gettext_lazy("Created"),
    "updated": gettext_lazy("Updated"),
}


def _sort_key(params) -> str:
    sort = params.get("sort") or DEFAULT_SORT
    return sort if sort.lstrip("-") in SORTS else DEFAULT_SORT


def _sorted(queryset, sort: str):
    descending = sort.startswith("-")
    expressions = SORTS[sort.lstrip("-")]
    order = [e.desc() if descending else e.asc() for e in expressions]
    order.append(F("pk").desc() if descending else F("pk").asc())
    return queryset.order_by(*order)


def _sort_headers(request, sort: str) -> list[dict]:
    """Column headers: the link that sorts by each (the current one flips direction)."""
    headers = []
    for key, label in SORT_LABELS.items():
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        params = request.GET.copy()
        params.pop("page", None)
        params["sort"] = ("" if descending else "-") + key if current else key
        headers.append(
            {
                "key": key,
                "label": label,
                "url": "?" + params.urlencode(),
                "aria_sort": ("descending" if descending else "ascending") if current else "",
            }
        )
    return headers


def _contact_selection(form: ContactFilterForm, request):
    try:
        return form.apply(Contact.objects.all()) if form.is_bound else Contact.objects.alive()
    except FilterError as exc:
        messages.error(
            request,
            _("The segment's saved filter is broken (%(error)s); fix it first.") % {"error": exc},
        )
        return Contact.objects.none()


# The list's own parameters, kept apart from its filters.
LIST_PARAMS = ("sort", "size", "page")


@role_required(Role.VIEWER)
def contact_list(request):
    filters = request.GET.copy()
    for name in LIST_PARAMS:
        filters.pop(name, None)
    form = ContactFilterForm(filters or None)
    queryset = _contact_selection(form, request)
    sort = _sort_key(request.GET)
    size = page_size(request.GET)
    page = numbered_page(_sorted(queryset, sort), request.GET, size=size)
    can_write = has_role(request.user, Role.MARKETER)
    return render(
        request,
        "contacts/contact_list.html",
        {
            "form": form,
            "page": page,
            "sort": sort,
            "size": size,
            "sizes": PAGE_SIZES,
            "headers": _sort_headers(request, sort),
            "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
            "filter_query": filters.urlencode(),
            "list_query": request.GET.urlencode(),
            "base_query": _query_without(request, "page"),
            "size_params": [
                (key, value)
                for key, values in request.GET.lists()
                if key not in ("size", "page")
                for value in values
            ],
            "any_contacts": page.rows or Contact.objects.exists(),
            "export_segment": form.cleaned_data.get("segment") if form.is_bound else None,
            "can_write": can_write,
            "bulk_form": BulkActionForm() if can_write else None,
            "bulk_actions": BulkAction.choices,
        },
    )


@require_POST
@role_required(Role.MARKETER)
def contact_bulk(request):
    """A bulk action from the contact list. Deleting, unsubscribing and anything applied to
    every contact a filter matches first shows a page that says how many, and runs when
    that page is submitted (`confirmed=1`)."""
    form = BulkActionForm(request.POST)
    # Back to the list as it was: its filters, sort, page size and page.
    list_query = QueryDict(request.POST.get("list_query", "")).urlencode()
    back = reverse("contacts_home") + (f"?{list_query}" if list_query else "")
    if not form.is_valid():
        problems = [str(error) for errors in form.errors.values() for error in errors]
        messages.error(request, " ".join(problems))
        return redirect(back)
    data = form.cleaned_data
    selection = form.selection()
    count = capped_count(selection.filter(deleted_at__isnull=True), cap=10**9)[0]
    action = data["action"]
    confirm = action in (BulkAction.DELETE, BulkAction.UNSUBSCRIBE) or form.everyone
    if confirm and request.POST.get("confirmed") != "1":
        return render(
            request,
            "contacts/contact_bulk_confirm.html",
            {
                "form": form,
                "action": action,
                "count": count,
                "question": _bulk_question(action, count, data),
                "ids": data["ids"],
                "back": back,
                "list_query": list_query,
            },
        )
    if form.everyone and count > INLINE_MAX:
        transaction.on_commit(
            lambda: contacts_bulk_action.delay(
                action=action,
                filter_query=data["filter"],
                tag=data["tag"],
                segment_id=data["segment"].pk if data["segment"] else None,
                reason=_unsubscribe_reason(request),
                actor_id=request.user.pk,
            )
        )
        messages.success(
            request,
            ngettext(
                "%(count)s contact is being updated in the background; "
                "refresh the list in a minute.",
                "%(count)s contacts are being updated in the background; "
                "refresh the list in a minute.",
                count,
            )
            % {"count": number_format(count, force_grouping=True)},
        )
        return redirect(back)
    try:
        result = contact_actions.contacts_bulk_apply(
            selection=selection,
            action=action,
            tag=data["tag"],
            segment=data["segment"],
            reason=_unsubscribe_reason(request),
            actor_id=request.user.pk,
        )
    except ContactsRuleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, bulk_report(result))
    return redirect(back)


def _unsubscribe_reason(request) -> str:
    return f"Unsubscribed from the contact list by {request.user.get_username()}"


def _bulk_question(action: str, count: int, data: dict) -> str:
    values = {
        "count": number_format(count, force_grouping=True),
        "tag": data.get("tag") or "",
        "segment": data["segment"].name if data.get("segment") else "",
    }
    questions = {
        BulkAction.DELETE: ngettext(
            "Delete %(count)s contact?", "Delete %(count)s contacts?", count
        ),
        BulkAction.UNSUBSCRIBE: ngettext(
            "Unsubscribe %(count)s contact from email?",
            "Unsubscribe %(count)s contacts from email?",
            count,
        ),
        BulkAction.TAG_ADD: ngettext(
            "Add tag “%(tag)s” to %(count)s contact?",
            "Add tag “%(tag)s” to %(count)s contacts?",
            count,
        ),
        BulkAction.TAG_REMOVE: ngettext(
            "Remove tag “%(tag)s” from %(count)s contact?",
            "Remove tag “%(tag)s” from %(count)s contacts?",
            count,
        ),
        BulkAction.SEGMENT_ADD: ngettext(
            "Add %(count)s contact to the segment “%(segment)s”?",
            "Add %(count)s contacts to the segment “%(segment)s”?",
            count,
        ),
    }
    return questions[action] % values


def bulk_report(result) -> str:
    """What a bulk action did, for the flash message."""
    values = {
        "count": number_format(result.changed, force_grouping=True),
        "tag": result.tag,
        "segment": result.segment_name,
    }
    n = result.changed
    if result.action == BulkAction.TAG_ADD:
        text = ngettext(
            "Tag “%(tag)s” added to %(count)s contact.",
            "Tag “%(tag)s” added to %(count)s contacts.",
            n,
        )
    elif result.action == BulkAction.TAG_REMOVE:
        text = ngettext(
            "Tag “%(tag)s” removed from %(count)s contact.",
            "Tag “%(tag)s” removed from %(count)s contacts.",
            n,
        )
    elif result.action == BulkAction.SEGMENT_ADD:
        text = ngettext(
            "%(count)s contact added to the segment “%(segment)s”.",
            "%(count)s contacts added to the segment “%(segment)s”.",
            n,
        )
    elif result.action == BulkAction.UNSUBSCRIBE:
        text = ngettext(
            "%(count)s email address added to the unsubscribed list.",
            "%(count)s email addresses added to the unsubscribed list.",
            n,
        )
    else:
        text = ngettext(
            "%(count)s contact deleted. Each can be restored from its page.",
            "%(count)s contacts deleted. Each can be restored from its page.",
            n,
        )
    return text % values


@role_required(Role.VIEWER)
def contact_detail(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk)
    catalog = custom_fields.custom_fields_load()
    field_values = [
        (catalog.get(int(key)) if key.isdigit() else None, key, value)
        for key, value in sorted(contact.fields.items())
    ]
    static_segments = list(contact.segments.filter(kind=SegmentKind.STATIC))
    dynamic_segments = [
        segment
        for segment in Segment.objects.filter(kind=SegmentKind.DYNAMIC)[:DYNAMIC_SEGMENTS_CHECKED]
        if _in_dynamic_segment(segment, contact)
    ]
    suppressions = suppressions_for_contact(email=contact.email, phone=contact.phone)
    for suppression in suppressions:
        # "hard bounce: 550 no such user; SES": the reason, the server's words, the source.
        why = str(suppression.get_reason_display()).lower()
        if suppression.detail:
            why += f": {Truncator(suppression.detail).chars(200)}"
        if suppression.source:
            why += f"; {suppression.source}"
        suppression.why = why
    return render(
        request,
        "contacts/contact_detail.html",
        {
            "contact": contact,
            "suppressions": suppressions,
            "suppressed_email": any(s.channel == ChannelType.EMAIL for s in suppressions),
            "suppressed_phone": any(s.channel == ChannelType.SMS for s in suppressions),
            "field_values": field_values,
            "static_segments": static_segments,
            "dynamic_segments": dynamic_segments,
            "unsubscribed": bool(contact.email)
            and Unsubscribed.objects.filter(email=contact.email).exists(),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


def _in_dynamic_segment(segment, contact) -> bool:
    try:
        return segment_contacts(segment).filter(pk=contact.pk).exists()
    except FilterError:
        return False  # a broken saved filter is shown on the segment's page, not here


@role_required(Role.MARKETER)
def contact_create(request):
    return _contact_form_page(request, contact=None)


@role_required(Role.MARKETER)
def contact_edit(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk)
    return _contact_form_page(request, contact=contact)


def _contact_form_page(request, *, contact):
    form = ContactForm(request.POST or None, contact=contact)
    if request.method == "POST" and form.is_valid():
        data, paths = form.contact_data()
        try:
            saved, created = _contact_save(
                contact=contact,
                data=data,
                segments=form.cleaned_data["segments"],
                clear=form.cleared_channels(),
            )
        except ContactError as exc:
            form.add_service_errors(exc.errors, paths)
        except ContactsRuleError as exc:
            form.add_error("segments", exc.message)
        else:
            if contact is None and not created:
                messages.info(
                    request,
                    _(
                        "A contact with this email, phone or external id existed: %(name)s "
                        "was updated instead of creating a duplicate."
                    )
                    % {"name": saved},
                )
            else:
                messages.success(request, _("Contact %(name)s saved.") % {"name": saved})
            return redirect(saved.get_absolute_url())
    return render(request, "contacts/contact_form.html", {"form": form, "contact": contact})


@transaction.atomic
def _contact_save(*, contact, data: dict, segments, clear: list[str]) -> tuple[Contact, bool]:
    """The contact write and its static-segment changes succeed or fail together."""
    editing = contact is not None
    if editing:
        contact = services.contact_update(contact=contact, data=data, clear=clear)
        created = False
    else:
        contact, created = services.contact_create_or_update(data=data, source=ContactSource.MANUAL)
    current = set(contact.segments.filter(kind=SegmentKind.STATIC).values_list("pk", flat=True))
    wanted = {segment.pk: segment for segment in segments}
    for segment_id, segment in wanted.items():
        if segment_id not in current:
            segment_services.segment_attach(segment=segment, contact_ids=[contact.pk])
    # The "new contact" form may land on an existing contact (same email); it adds to
    # segments as the eSputnik v1 API's subscribe does, and never takes a contact out of one.
    if editing:
        for segment in Segment.objects.filter(pk__in=current - set(wanted)):
            segment_services.segment_detach(segment=segment, contact_ids=[contact.pk])
    return contact, created


@require_POST
@role_required(Role.MARKETER)
def contact_delete(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk)
    erase = request.POST.get("erase") == "1"
    services.contact_delete(contact=contact, erase=erase)
    if erase:
        messages.success(request, _("Contact deleted and personal data erased."))
    else:
        messages.success(
            request, _("Contact %(name)s deleted. It can be restored.") % {"name": contact}
        )
    return redirect(reverse("contact_detail", args=[pk]))


@role_required(Role.MARKETER)
def contact_export(request, pk: int):
    """Everything Herald holds about the contact, as a JSON download (a privacy request);
    the same document as GET /api/herald/contacts/{id}/export."""
    contact = get_object_or_404(Contact, pk=pk)
    response = StreamingHttpResponse(
        contact_export_stream(contact=contact), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{contact_export_filename(contact)}"'
    return response


@require_POST
@role_required(Role.MARKETER)
def contact_restore(request, pk: int):
    contact = get_object_or_404(Contact, pk=pk)
    services.contact_restore(contact=contact)
    messages.success(request, _("Contact %(name)s restored.") % {"name": contact})
    return redirect(contact.get_absolute_url())


# -- custom fields ---------------------------------------------------------------------------


@role_required(Role.VIEWER)
def custom_field_list(request):
    return render(
        request,
        "contacts/custom_field_list.html",
        {
            "fields": custom_fields.custom_fields_load().values(),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


@role_required(Role.MARKETER)
def custom_field_create(request):
    form = CustomFieldForm(request.POST or None)
    if (
        request.method == "POST"
        and form.is_valid()
        and _custom_field_call(form, custom_fields.custom_field_create, **form.cleaned_data)
    ):
        messages.success(
            request, _("Custom field %(name)s created.") % {"name": form.cleaned_data["name"]}
        )
        return redirect("custom_field_list")
    return render(request, "contacts/custom_field_form.html", {"form": form})


@role_required(Role.MARKETER)
def custom_field_edit(request, pk: int):
    field = get_object_or_404(CustomField, pk=pk)
    # The form validates a copy: ModelForm writes cleaned values onto its instance, and the
    # service must see the field as stored to judge the change (e.g. of type).
    form = CustomFieldForm(request.POST or None, instance=CustomField.objects.get(pk=pk))
    if (
        request.method == "POST"
        and form.is_valid()
        and _custom_field_call(
            form, custom_fields.custom_field_update, field=field, **form.cleaned_data
        )
    ):
        messages.success(request, _("Custom field %(name)s saved.") % {"name": field.name})
        return redirect("custom_field_list")
    return render(request, "contacts/custom_field_form.html", {"form": form, "field": field})


# The service names fields as the API does; the form names them as the model does.
CUSTOM_FIELD_ERROR_FIELDS = {
    "groupName": "group_name",
    "groupKey": "group_key",
    "allowedValues": "allowed_values",
}


def _custom_field_call(form, service, **kwargs) -> bool:
    try:
        service(**kwargs)
    except ContactsRuleError as exc:
        form_error(form, exc, field=CUSTOM_FIELD_ERROR_FIELDS.get(exc.field, exc.field))
        return False
    return True


@require_POST
@role_required(Role.MARKETER)
def custom_field_delete(request, pk: int):
    field = get_object_or_404(CustomField, pk=pk)
    try:
        custom_fields.custom_field_delete(field=field)
    except ContactsRuleError as exc:
        messages.error(
            request,
            _("Custom field %(name)s was not deleted: %(problem)s.")
            % {"name": field.name, "problem": exc.message},
        )
    else:
        messages.success(request, _("Custom field %(name)s deleted.") % {"name": field.name})
    return redirect("custom_field_list")


# -- unsubscribed list -----------------------------------------------------------------------


@role_required(Role.VIEWER)
def unsubscribed_list(request):
    return _unsubscribed_page(request, form=UnsubscribedAddForm())


def _unsubscribed_page(request, *, form, failures=(), status=200):
    query = (request.GET.get("q") or "").strip().lower()
    entries = Unsubscribed.objects.all()
    if query:
        # Prefix on the unique index; a contains-search would scan the whole list.
        entries = entries.filter(email__startswith=query)
    entries = entries.annotate(has_contact=Exists(Contact.objects.filter(email=OuterRef("email"))))
    page = keyset_page(entries, request.GET)
    count, exact = page_count(entries, page)
    return render(
        request,
        "contacts/unsubscribed_list.html",
        {
            "page": page,
            "q": query,
            "count": count,
            "count_exact": exact,
            "base_query": _query_without(request, "after", "before"),
            "form": form,
            "failures": failures,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


@require_POST
@role_required(Role.MARKETER)
def unsubscribed_add(request):
    form = UnsubscribedAddForm(request.POST)
    if not form.is_valid():
        return _unsubscribed_page(request, form=form, status=400)
    lines = form.cleaned_data["emails"]
    try:
        result = unsubscribed.unsubscribed_add(emails=lines, reason=form.cleaned_data["reason"])
    except ContactsRuleError as exc:
        form.add_error("emails", exc.message)
        return _unsubscribed_page(request, form=form, status=400)
    stored = len(lines) - len(result["failed"])
    if stored:
        already = result["alreadyUnsubscribed"]
        text = ngettext(
            "%(count)s address added to the unsubscribed list.",
            "%(count)s addresses added to the unsubscribed list.",
            result["added"],
        ) % {"count": result["added"]}
        if already:
            text += " " + ngettext(
                "%(count)s was already on it.", "%(count)s were already on it.", already
            ) % {"count": already}
        messages.success(request, text)
    if result["failed"]:
        # Keep only the refused lines in the box, so the marketer fixes them and resubmits.
        failures = [
            {"line": item["index"] + 1, "email": item["email"], "reason": item["reason"]}
            for item in result["failed"]
        ]
        form = UnsubscribedAddForm(
            initial={
                "emails": "\n".join(str(item["email"]) for item in result["failed"]),
                "reason": form.cleaned_data["reason"],
            }
        )
        return _unsubscribed_page(request, form=form, failures=failures, status=400)
    return _back(request, "unsubscribed_list")


@require_POST
@role_required(Role.MARKETER)
def unsubscribed_remove(request):
    emails = request.POST.getlist("email")
    if not emails:
        messages.error(request, _("Choose the addresses to remove."))
        return _back(request, "unsubscribed_list")
    try:
        result = unsubscribed.unsubscribed_remove(emails=emails)
    except ContactsRuleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            ngettext(
                "%(count)s address removed from the unsubscribed list.",
                "%(count)s addresses removed from the unsubscribed list.",
                result["removed"],
            )
            % {"count": result["removed"]},
        )
    return _back(request, "unsubscribed_list")
