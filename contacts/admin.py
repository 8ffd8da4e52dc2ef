"""Django admin for the contacts app. Every write goes through the same services as the API and
the marketer pages; the admin adds search, filters and bulk actions on top."""

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.forms.models import BaseInlineFormSet
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from contacts import services
from contacts.channels import email_normalise
from contacts.custom_fields import (
    custom_field_create,
    custom_field_delete,
    custom_field_prepare,
    custom_field_update,
)
from contacts.errors import ContactsRuleError
from contacts.export import export_csv_lines
from contacts.forms import search_q
from contacts.models import (
    Contact,
    CustomField,
    DynamicMember,
    ImportFailure,
    ImportJob,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentMembership,
    SegmentRecheck,
    Suppression,
    Unsubscribed,
)
from contacts.optin import ConfirmationError, contact_confirm
from contacts.segments import (
    segment_attach,
    segment_create,
    segment_delete,
    segment_detach,
    segment_prepare,
    segment_update,
)
from contacts.suppression import address_normalise, suppression_add_manual, suppressions_lift
from contacts.unsubscribed import UNSUBSCRIBED_MAX_EMAILS, unsubscribed_add, unsubscribed_remove

# Bulk actions call one service per contact (each is its own audited change); past this many
# the admin refuses and points at the API or an import, which work in set-based batches.
ACTION_MAX_CONTACTS = 1000
# A static segment may hold a million members; the inline shows the newest ones only.
INLINE_MEMBERS_SHOWN = 50
# The rest of an import's failures are in the CSV download on the import page.
INLINE_FAILURES_SHOWN = 200


# The rules name fields as the API does; the admin forms name them as the model does.
FORM_FIELD_NAMES = {
    "groupName": "group_name",
    "groupKey": "group_key",
    "allowedValues": "allowed_values",
    "externalKey": "external_key",
}


def _validated(form: forms.ModelForm, prepare, **values) -> None:
    """Check the form's values against the rules (a service's `*_prepare`, which writes
    nothing), turning a refusal into a form error: the admin validates before it saves."""
    try:
        prepare(**values)
    except ContactsRuleError as exc:
        name = FORM_FIELD_NAMES.get(exc.field, exc.field)
        if name.startswith("filter"):
            form.add_error("filter" if "filter" in form.fields else None, str(exc))
        else:
            form.add_error(name if name in form.fields else None, exc.message)


# -- contacts --------------------------------------------------------------------------------


class DeletedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("alive", "Active"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "alive":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """Read-only record view: contacts are written through the marketer pages, the API and
    imports, which dedupe and validate; the admin offers bulk actions over them."""

    list_display = [
        "id",
        "__str__",
        "email",
        "phone",
        "external_customer_id",
        "confirmed",
        "source",
        "created_at",
        "deleted_at",
    ]
    list_filter = [DeletedFilter, "confirmed", "source", "created_at"]
    search_fields = ["=id", "email", "phone", "=external_customer_id", "last_name", "first_name"]
    # Exact counts of a million-row table on every changelist view are not worth it.
    show_full_result_count = False
    list_per_page = 50
    ordering = ["-id"]
    actions = ["soft_delete", "restore", "confirm", "unsubscribe_emails", "export_csv"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        # The marketer list's search: prefix matches the indexes serve, where the admin's
        # default would run icontains over every column of a million rows.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search_q(search_term)), False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Contact._meta.fields] + ["page_link"]

    @admin.display(description="Marketer page")
    def page_link(self, obj):
        url = reverse("contact_detail", args=[obj.pk])
        return format_html('<a href="{}">Open, edit, delete or restore</a>', url)

    def _bounded(self, request, queryset) -> bool:
        if queryset.count() > ACTION_MAX_CONTACTS:
            self.message_user(
                request,
                f"Select at most {ACTION_MAX_CONTACTS} contacts here; use the API or an import "
                "for larger changes.",
                messages.ERROR,
            )
            return False
        return True

    def has_write_permission(self, request) -> bool:
        # The record view is read-only for everyone; the actions, which write through the
        # services, are for users holding the change permission.
        return request.user.has_perm("contacts.change_contact")

    @admin.action(description="Delete selected contacts (restorable)", permissions=["write"])
    def soft_delete(self, request, queryset):
        if not self._bounded(request, queryset):
            return
        done = 0
        for contact in queryset.filter(deleted_at__isnull=True):
            services.contact_delete(contact=contact, erase=False)
            done += 1
        self.message_user(request, f"{done} contact(s) deleted; they can be restored.")

    @admin.action(description="Restore selected deleted contacts", permissions=["write"])
    def restore(self, request, queryset):
        if not self._bounded(request, queryset):
            return
        done = 0
        for contact in queryset.filter(deleted_at__isnull=False):
            services.contact_restore(contact=contact)
            done += 1
        self.message_user(request, f"{done} contact(s) restored.")

    @admin.action(
        description="Mark selected contacts as confirmed (double opt-in done)",
        permissions=["write"],
    )
    def confirm(self, request, queryset):
        if not self._bounded(request, queryset):
            return
        done, refused = 0, 0
        for contact_id in queryset.filter(confirmed=False).values_list("pk", flat=True):
            try:
                contact_confirm(contact_id=contact_id)
                done += 1
            except ConfirmationError:
                refused += 1
        note = f"; {refused} deleted contact(s) left unconfirmed" if refused else ""
        self.message_user(request, f"{done} contact(s) confirmed{note}.")

    @admin.action(
        description="Put the emails of selected contacts on the unsubscribed list",
        permissions=["write"],
    )
    def unsubscribe_emails(self, request, queryset):
        emails = list(
            queryset.exclude(email="")
            .values_list("email", flat=True)
            .distinct()[: UNSUBSCRIBED_MAX_EMAILS + 1]
        )
        if len(emails) > UNSUBSCRIBED_MAX_EMAILS:
            self.message_user(
                request,
                f"At most {UNSUBSCRIBED_MAX_EMAILS} addresses at a time.",
                messages.ERROR,
            )
            return
        if not emails:
            self.message_user(
                request, "None of the selected contacts has an email.", messages.WARNING
            )
            return
        result = unsubscribed_add(emails=emails, reason="admin")
        self.message_user(
            request,
            f"{result['added']} address(es) unsubscribed, "
            f"{result['alreadyUnsubscribed']} already were.",
        )

    @admin.action(description="Export selected contacts as CSV")
    def export_csv(self, request, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(
            export_csv_lines(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
        return response


# -- custom fields ---------------------------------------------------------------------------


# What the services take. The admin rebuilds each form's Meta.fields from its own field list
# (which adds read-only display fields), so the service arguments are named here.
CUSTOM_FIELD_FIELDS = [
    "name",
    "key",
    "group_name",
    "group_key",
    "type",
    "required",
    "readonly",
    "allowed_values",
]
SEGMENT_FIELDS = ["name", "kind", "description", "filter", "external_key"]


class CustomFieldAdminForm(forms.ModelForm):
    allowed_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For a combobox field: one allowed value per line.",
    )

    class Meta:
        model = CustomField
        fields = CUSTOM_FIELD_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["allowed_values"] = "\n".join(self.instance.allowed_values)

    def clean_allowed_values(self) -> list[str]:
        text = self.cleaned_data["allowed_values"] or ""
        return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in CUSTOM_FIELD_FIELDS}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.instance.pk:
            stored = CustomField.objects.get(pk=self.instance.pk)
            _validated(self, custom_field_prepare, field=stored, **self.changes())
        else:
            _validated(self, custom_field_prepare, **self.changes())
        return data


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    form = CustomFieldAdminForm
    list_display = ["id", "name", "group_name", "key", "group_key", "type", "required", "readonly"]
    list_filter = ["type", "required", "readonly", "group_name"]
    search_fields = ["name", "key", "group_name", "=id"]
    actions = ["delete_through_service"]

    def save_model(self, request, obj, form, change):
        if change:
            stored = CustomField.objects.get(pk=obj.pk)
            saved = custom_field_update(field=stored, **form.changes())
        else:
            saved = custom_field_create(**form.changes())
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        custom_field_delete(field=obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would skip the service's checks
        return actions

    def get_deleted_objects(self, objs, request):
        # The field's values live in Contact.fields (JSONB), not in related rows.
        return [str(obj) for obj in objs], {}, set(), []

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ContactsRuleError as exc:
            self.message_user(request, f"Not deleted: {exc.message}.", messages.ERROR)
            return redirect("admin:contacts_customfield_change", object_id)

    @admin.action(description="Delete selected fields and their values", permissions=["delete"])
    def delete_through_service(self, request, queryset):
        deleted, refused = 0, []
        for field in queryset:
            try:
                with transaction.atomic():
                    custom_field_delete(field=field)
                deleted += 1
            except ContactsRuleError as exc:
                refused.append(f"{field.name}: {exc.message}")
        self.message_user(request, f"{deleted} field(s) deleted.")
        for reason in refused:
            self.message_user(request, f"Not deleted — {reason}.", messages.ERROR)


# -- segments --------------------------------------------------------------------------------


class BoundedInlineFormSet(BaseInlineFormSet):
    """An inline showing the first `limit` rows in `order`: a segment may hold a million
    members and an import a million failed rows, too many for one admin page."""

    order: tuple[str, ...] = ("-pk",)
    limit = 50
    related: tuple[str, ...] = ()

    def get_queryset(self):
        # Evaluated once and kept: the formset asks for its queryset many times per render.
        if not hasattr(self, "_bounded"):
            rows = super().get_queryset().select_related(*self.related).order_by(*self.order)
            self._bounded = rows[: self.limit]
            list(self._bounded)
        return self._bounded


class NewestMembersFormSet(BoundedInlineFormSet):
    # -pk walks the primary key index instead of sorting every member by date.
    order = ("-pk",)
    limit = INLINE_MEMBERS_SHOWN
    related = ("contact",)


class FirstFailuresFormSet(BoundedInlineFormSet):
    order = ("index",)
    limit = INLINE_FAILURES_SHOWN


class MembershipInline(admin.TabularInline):
    model = SegmentMembership
    formset = NewestMembersFormSet
    raw_id_fields = ["contact"]
    readonly_fields = ["added_at"]
    extra = 3
    verbose_name = "member"
    verbose_name_plural = f"members (the newest {INLINE_MEMBERS_SHOWN}; add more by contact id)"

    def has_change_permission(self, request, obj=None):
        # Members are added and removed, never re-pointed at another contact.
        return False


class SegmentAdminForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = SEGMENT_FIELDS

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {name: data.get(name) for name in SEGMENT_FIELDS}
        values["filter"] = values["filter"] or {}
        if self.instance.pk:
            stored = Segment.objects.get(pk=self.instance.pk)
            _validated(self, segment_prepare, segment=stored, **values)
        else:
            _validated(self, segment_prepare, **values)
        return data


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ["id", "name", "external_key", "kind", "updated_at", "page_link"]
    list_filter = ["kind"]
    search_fields = ["name", "description", "=id", "=external_key"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]
    actions = ["delete_through_service"]

    @admin.display(description="Marketer page")
    def page_link(self, obj):
        return format_html('<a href="{}">open</a>', reverse("segment_detail", args=[obj.pk]))

    def get_inline_instances(self, request, obj=None):
        if obj is None or obj.kind != SegmentKind.STATIC:
            return []
        return super().get_inline_instances(request, obj)

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data.get(name) for name in SEGMENT_FIELDS}
        values["filter"] = values["filter"] or {}
        if change:
            stored = Segment.objects.get(pk=obj.pk)
            saved = segment_update(segment=stored, **values)
        else:
            saved = segment_create(**values)
        obj.pk = saved.pk

    def save_formset(self, request, form, formset, change):
        segment = Segment.objects.get(pk=form.instance.pk)
        added = [
            f.cleaned_data["contact"].pk
            for f in formset.extra_forms
            if f.has_changed()
            and f.cleaned_data.get("contact")
            and not f.cleaned_data.get("DELETE")
        ]
        removed = [
            f.instance.contact_id
            for f in formset.initial_forms
            if f.cleaned_data.get("DELETE") and f.instance.pk
        ]
        if added:
            result = segment_attach(segment=segment, contact_ids=added)
            if result["notFound"]:
                self.message_user(
                    request,
                    f"Not added (deleted contacts): {result['notFound']}",
                    messages.WARNING,
                )
        if removed:
            segment_detach(segment=segment, contact_ids=removed)
        # The admin's change message reads what formset.save() would have recorded.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        segment_delete(segment=obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ContactsRuleError as exc:
            self.message_user(request, f"Not deleted: {exc.message}.", messages.ERROR)
            return redirect("admin:contacts_segment_change", object_id)

    def get_deleted_objects(self, objs, request):
        # Listing every membership row of a large segment would render a page per member.
        return [str(obj) for obj in objs], {}, set(), []

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Delete selected segments (contacts stay)", permissions=["delete"])
    def delete_through_service(self, request, queryset):
        deleted, refused = 0, []
        for segment in queryset:
            try:
                with transaction.atomic():
                    segment_delete(segment=segment)
                deleted += 1
            except ContactsRuleError as exc:
                refused.append(f"{segment.name}: {exc.message}")
        self.message_user(request, f"{deleted} segment(s) deleted.")
        for reason in refused:
            self.message_user(request, f"Not deleted — {reason}.", messages.ERROR)


# -- unsubscribed list -----------------------------------------------------------------------


class UnsubscribedAdminForm(forms.ModelForm):
    class Meta:
        model = Unsubscribed
        fields = ["email", "reason"]

    def clean_email(self):
        email, problem = email_normalise(self.cleaned_data["email"])
        if problem:
            raise forms.ValidationError(problem)
        return email


@admin.register(Unsubscribed)
class UnsubscribedAdmin(admin.ModelAdmin):
    form = UnsubscribedAdminForm
    list_display = ["email", "reason", "created_at"]
    search_fields = ["email", "reason"]
    list_filter = ["created_at"]
    show_full_result_count = False
    actions = ["remove_through_service"]

    def has_change_permission(self, request, obj=None):
        return False  # an entry is added or removed, never edited

    def save_model(self, request, obj, form, change):
        unsubscribed_add(emails=[form.cleaned_data["email"]], reason=form.cleaned_data["reason"])
        obj.pk = Unsubscribed.objects.get(email=form.cleaned_data["email"]).pk

    def delete_model(self, request, obj):
        unsubscribed_remove(emails=[obj.email])

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Remove selected addresses from the list", permissions=["delete"])
    def remove_through_service(self, request, queryset):
        limit = UNSUBSCRIBED_MAX_EMAILS
        emails = list(queryset.values_list("email", flat=True)[: limit + 1])
        if len(emails) > limit:
            self.message_user(request, f"At most {limit} addresses at a time.", messages.ERROR)
            return
        result = unsubscribed_remove(emails=emails)
        self.message_user(request, f"{result['removed']} address(es) removed from the list.")


# -- imports ---------------------------------------------------------------------------------


class ImportFailureInline(admin.TabularInline):
    model = ImportFailure
    formset = FirstFailuresFormSet
    verbose_name_plural = f"failed rows (the first {INLINE_FAILURES_SHOWN})"
    fields = ["index", "reason", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "session_id",
        "kind",
        "status",
        "total",
        "processed",
        "created_count",
        "updated_count",
        "failed_count",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["=session_id", "source_url", "description"]
    inlines = [ImportFailureInline]
    exclude = ["payload", "contact_ids"]  # up to 3000 contacts each: too big for a form
    readonly_fields = ["pages"]

    @admin.display(description="Pages")
    def pages(self, obj):
        return format_html(
            '<a href="{}">Import page</a> · <a href="{}">All failed rows (CSV)</a>',
            reverse("import_detail", args=[obj.session_id]),
            reverse("import_failures_csv", args=[obj.session_id]),
        )

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# -- suppression list ------------------------------------------------------------------------


class SuppressionAdminForm(forms.ModelForm):
    """Adding by hand: the address is checked and stored by the service."""

    class Meta:
        model = Suppression
        fields = ["channel", "address", "detail"]

    def clean(self):
        cleaned = super().clean()
        channel, address = cleaned.get("channel"), cleaned.get("address")
        if channel and address:
            try:
                cleaned["address"] = address_normalise(channel, address)
            except ContactsRuleError as exc:
                self.add_error("address", exc.message)
        return cleaned


class InForceFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("in_force", "In force"), ("lifted", "Lifted")]

    def queryset(self, request, queryset):
        if self.value() == "in_force":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionAdminForm
    list_display = ["address", "channel", "reason", "source", "created_at", "lifted_at"]
    list_filter = [InForceFilter, "reason", "channel", "created_at"]
    search_fields = ["address", "detail", "source"]
    readonly_fields = ["reason", "source", "created_at", "lifted_at", "lifted_by"]
    show_full_result_count = False
    actions = ["lift_through_service"]

    def has_change_permission(self, request, obj=None):
        return False  # a suppression is added or lifted, never edited

    def has_delete_permission(self, request, obj=None):
        return False  # lifting keeps the record; nothing is deleted

    def save_model(self, request, obj, form, change):
        suppression_add_manual(
            channel=form.cleaned_data["channel"],
            address=form.cleaned_data["address"],
            detail=form.cleaned_data["detail"],
            user=request.user,
        )
        obj.pk = (
            Suppression.objects.filter(
                channel=form.cleaned_data["channel"],
                address=form.cleaned_data["address"],
                lifted_at__isnull=True,
            )
            .values_list("pk", flat=True)
            .first()
        )

    @admin.action(description="Lift selected suppressions", permissions=["lift"])
    def lift_through_service(self, request, queryset):
        lifted = suppressions_lift(ids=queryset.values_list("pk", flat=True), user=request.user)
        self.message_user(
            request, f"{lifted} suppression(s) lifted; messages may reach them again."
        )

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("contacts.change_suppression")


# -- dynamic segments' stored members (contacts.segment_members) -----------------------------


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Written only by the segment members drain; shown for inspection."""

    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DynamicMember)
class DynamicMemberAdmin(_ReadOnlyAdmin):
    list_display = ["id", "segment", "contact", "entered_at"]
    list_filter = [("segment", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["segment", "contact"]
    search_fields = ["=contact__id", "=segment__id"]
    ordering = ["-id"]


@admin.register(SegmentRecheck)
class SegmentRecheckAdmin(_ReadOnlyAdmin):
    list_display = ["id", "contact_id", "marked_at"]
    search_fields = ["=contact__id"]
    ordering = ["id"]


@admin.register(SegmentChange)
class SegmentChangeAdmin(_ReadOnlyAdmin):
    list_display = ["id", "segment", "contact_id", "entered", "at"]
    list_filter = ["entered", ("segment", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["segment"]
    search_fields = ["=contact__id", "=segment__id"]
    ordering = ["-id"]
