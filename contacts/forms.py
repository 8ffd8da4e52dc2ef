"""Forms of the marketer pages. They parse page input into eSputnik v1 Contact dicts and keyword
arguments the services take; the services own the rules and report what breaks them."""

from django import forms
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Upper
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.core.external_keys import FORM_LABEL, form_help
from contacts.contact_actions import TAG_MAX, BulkAction
from contacts.custom_fields import custom_fields_load
from contacts.filters.compiler import segment_contacts
from contacts.models import (
    ChannelType,
    Contact,
    CustomField,
    CustomFieldType,
    Segment,
    SegmentKind,
    SuppressionReason,
    Unsubscribed,
)

YES_NO = [("", _("Any")), ("yes", _("Yes")), ("no", _("No"))]
DELETED_CHOICES = [
    ("", _("Active contacts")),
    ("only", _("Deleted only")),
    ("all", _("Active and deleted")),
]
# Paging pastes of addresses or ids into one request; the services cap what they accept.
MAX_PASTED_LINES = 5000


def lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ContactFilterForm(forms.Form):
    q = forms.CharField(required=False, label=_("Search"), max_length=254)
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.all(), required=False, empty_label=_("All segments")
    )
    confirmed = forms.ChoiceField(choices=YES_NO, required=False)
    unsubscribed = forms.ChoiceField(choices=YES_NO, required=False)
    deleted = forms.ChoiceField(choices=DELETED_CHOICES, required=False, label=_("Status"))

    def apply(self, queryset):
        """Narrow a Contact queryset. Each branch uses a column index where one exists."""
        data = self.cleaned_data if self.is_valid() else {}
        deleted = data.get("deleted")
        if deleted == "only":
            queryset = queryset.filter(deleted_at__isnull=False)
        elif deleted != "all":
            queryset = queryset.filter(deleted_at__isnull=True)
        if data.get("confirmed"):
            queryset = queryset.filter(confirmed=data["confirmed"] == "yes")
        if data.get("unsubscribed"):
            listed = Exists(Unsubscribed.objects.filter(email=OuterRef("email")))
            if data["unsubscribed"] == "yes":
                queryset = queryset.filter(listed)
            else:
                queryset = queryset.exclude(listed)
        segment = data.get("segment")
        if segment is not None:
            if segment.kind == SegmentKind.STATIC:
                queryset = queryset.filter(segmentmembership__segment=segment)
            else:
                queryset = queryset.filter(pk__in=segment_contacts(segment).values("pk"))
        if data.get("q"):
            queryset = queryset.filter(search_q(data["q"]))
        return queryset


class BulkActionForm(forms.Form):
    """A bulk action on the contact list: the ticked rows (`ids`), or with scope=all every
    contact the list's filter (`filter`, its query string) matches."""

    action = forms.ChoiceField(choices=BulkAction.choices, label=_("Action"))
    tag = forms.CharField(required=False, max_length=TAG_MAX, label=_("Tag"))
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC),
        required=False,
        empty_label=_("Choose a static segment"),
        label=_("Static segment"),
    )
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    scope = forms.ChoiceField(
        choices=[("selected", "selected"), ("all", "all")], required=False, initial="selected"
    )
    filter = forms.CharField(required=False, max_length=4000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable: the selection is narrowed to contacts that exist.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in (BulkAction.TAG_ADD, BulkAction.TAG_REMOVE) and not data.get("tag"):
            self.add_error("tag", _("Enter the tag."))
        if action == BulkAction.SEGMENT_ADD and not data.get("segment"):
            self.add_error("segment", _("Choose the static segment."))
        if data.get("scope") != "all" and not data.get("ids"):
            raise forms.ValidationError(_("Tick the contacts first."))
        return data

    @property
    def everyone(self) -> bool:
        return self.cleaned_data.get("scope") == "all"

    def filter_form(self) -> "ContactFilterForm":
        return ContactFilterForm(QueryDict(self.cleaned_data.get("filter") or ""))

    def selection(self):
        """The contacts the action applies to (a queryset)."""
        if self.everyone:
            form = self.filter_form()
            return form.apply(Contact.objects.all()) if form.is_bound else Contact.objects.alive()
        return Contact.objects.filter(pk__in=self.cleaned_data["ids"])


def search_q(text: str) -> Q:
    """Prefix matches, shaped so the email/phone (pattern ops), external id and upper(last_name)
    indexes serve them. First names have no index: a rare first name scans the table (about a
    second at a million contacts), common ones stop at the first page of matches."""
    text = text.strip()
    if "@" in text:
        return Q(email__startswith=text.lower())
    query = Q(external_customer_id=text)
    if text.isdigit() and len(text) < 18:
        query |= Q(pk=int(text))
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 3 and not any(ch.isalpha() for ch in text):
        return query | Q(phone__startswith="+" + digits.lstrip("0"))
    query |= (
        _last_name_prefix(text)
        | Q(first_name__istartswith=text)
        | Q(email__startswith=text.lower())
    )
    parts = text.split(None, 1)
    if len(parts) == 2:
        query |= Q(first_name__istartswith=parts[0]) & _last_name_prefix(parts[1])
    return query


def _last_name_prefix(text: str) -> Q:
    """upper(last_name) LIKE 'TEXT%' as a range too: the planner uses the upper(last_name)
    btree index for a range but not for LIKE (outside the C collation)."""
    prefix = text.upper()
    upper = Upper("last_name")
    after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return (
        Q(GreaterThanOrEqual(upper, prefix))
        & Q(LessThan(upper, after))
        & Q(last_name__istartswith=text)
    )


class ContactForm(forms.Form):
    """Standard fields, one input per custom field (named `cf_<id>`) and static segments."""

    email = forms.CharField(required=False, max_length=254, label=_("Email"))
    phone = forms.CharField(
        required=False,
        max_length=32,
        label=_("Phone"),
        help_text=_("International, e.g. +380942583691"),
    )
    first_name = forms.CharField(required=False, max_length=40, label=_("First name"))
    last_name = forms.CharField(required=False, max_length=40, label=_("Last name"))
    region = forms.CharField(required=False, max_length=100, label=_("Region"))
    town = forms.CharField(required=False, max_length=100, label=_("Town"))
    address = forms.CharField(required=False, max_length=255, label=_("Address"))
    postcode = forms.CharField(required=False, max_length=20, label=_("Postcode"))
    language_code = forms.CharField(
        required=False, max_length=10, label=_("Language"), help_text=_("e.g. en, uk")
    )
    time_zone = forms.CharField(
        required=False, max_length=64, label=_("Time zone"), help_text=_("e.g. Europe/Kyiv")
    )
    external_customer_id = forms.CharField(
        required=False, max_length=255, label=_("External customer id")
    )
    tags = forms.CharField(required=False, label=_("Tags"), help_text=_("Comma separated"))
    segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Static segments"),
    )

    STANDARD = [
        "email",
        "phone",
        "first_name",
        "last_name",
        "region",
        "town",
        "address",
        "postcode",
        "language_code",
        "time_zone",
        "external_customer_id",
        "tags",
    ]

    def __init__(self, *args, contact=None, **kwargs):
        self.contact = contact
        self.custom_fields = list(custom_fields_load().values())
        if contact is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(contact)
        super().__init__(*args, **kwargs)
        for field in self.custom_fields:
            self.fields[f"cf_{field.pk}"] = custom_field_input(field)

    @staticmethod
    def initial_for(contact) -> dict:
        initial = {name: getattr(contact, name) or "" for name in ContactForm.STANDARD}
        initial["tags"] = ", ".join(contact.tags or [])
        initial["segments"] = list(
            contact.segments.filter(kind=SegmentKind.STATIC).values_list("pk", flat=True)
        )
        for key, value in (contact.fields or {}).items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            initial[f"cf_{key}"] = value
        return initial

    @property
    def standard_fields(self):
        return [self[name] for name in self.STANDARD]

    @property
    def custom_inputs(self):
        return [(field, self[f"cf_{field.pk}"]) for field in self.custom_fields]

    def cleared_channels(self) -> list[str]:
        """The channels of the contact being edited that the marketer blanked: the eSputnik v1 API's
        contact format can set a channel but not remove one, so they go to the service apart
        (contact_update's `clear`)."""
        if self.contact is None:
            return []
        return [
            name
            for name in ("email", "phone")
            if getattr(self.contact, name) and not self.cleaned_data.get(name)
        ]

    def contact_data(self) -> tuple[dict, dict[str, str]]:
        """The eSputnik v1 Contact dict and, for mapping service errors back onto inputs, the
        error path of each value → the form field that holds it."""
        data = self.cleaned_data
        paths: dict[str, str] = {}
        channels = []
        for kind, name in (("email", "email"), ("sms", "phone")):
            if data.get(name):
                paths[f"channels[{len(channels)}]"] = name
                channels.append({"type": kind, "value": data[name]})
        body: dict = {
            "channels": channels,
            "firstName": data["first_name"],
            "lastName": data["last_name"],
            "address": {
                "region": data["region"],
                "town": data["town"],
                "address": data["address"],
                "postcode": data["postcode"],
            },
            "languageCode": data["language_code"],
            "timeZone": data["time_zone"],
            "externalCustomerId": data["external_customer_id"],
            "tags": [tag.strip() for tag in data["tags"].split(",") if tag.strip()],
        }
        paths.update(
            {
                "firstName": "first_name",
                "lastName": "last_name",
                "address.region": "region",
                "address.town": "town",
                "address.address": "address",
                "address.postcode": "postcode",
                "languageCode": "language_code",
                "timeZone": "time_zone",
                "externalCustomerId": "external_customer_id",
                "tags": "tags",
                "channels": "email",
            }
        )
        fields = []
        for field in self.custom_fields:
            if field.readonly:
                continue
            value = data.get(f"cf_{field.pk}")
            if field.type == CustomFieldType.BOOLEAN:
                value = {"true": True, "false": False}.get(value)
            elif field.type == CustomFieldType.DATE and value:
                value = value.isoformat()
            elif field.type == CustomFieldType.NUMBER and value is not None:
                value = int(value) if value == value.to_integral_value() else float(value)
            paths[f"fields[{len(fields)}]"] = f"cf_{field.pk}"
            fields.append({"id": field.pk, "value": value if value != "" else None})
        body["fields"] = fields
        return body, paths

    def add_service_errors(self, errors, paths: dict[str, str]) -> None:
        """Attach (path, problem) pairs from the services to the input they concern."""
        for path, problem in errors:
            target = None
            for prefix in sorted(paths, key=len, reverse=True):
                if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                    target = paths[prefix]
                    break
            if target is None and path.startswith("fields"):
                target = self._custom_field_named_in(problem)
            self.add_error(target, f"{problem}" if target else f"{path}: {problem}".lstrip(": "))

    def _custom_field_named_in(self, problem: str) -> str | None:
        for field in self.custom_fields:
            if f"custom field {field.pk} " in problem:
                return f"cf_{field.pk}"
        return None


def custom_field_input(field: CustomField) -> forms.Field:
    """A form input typed like the custom field; readonly fields show but do not submit."""
    common = {"label": field.name, "required": field.required and not field.readonly}
    if field.type == CustomFieldType.NUMBER:
        widget = forms.NumberInput(attrs={"step": "any"})
        result = forms.DecimalField(widget=widget, **common)
    elif field.type == CustomFieldType.DATE:
        result = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    elif field.type == CustomFieldType.BOOLEAN:
        result = forms.ChoiceField(
            choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))], **common
        )
    elif field.type == CustomFieldType.CHOICE:
        choices = [("", "—")] + [(value, value) for value in field.allowed_values]
        result = forms.ChoiceField(choices=choices, **common)
    else:
        result = forms.CharField(max_length=1000, **common)
    result.disabled = field.readonly
    return result


class CustomFieldForm(forms.ModelForm):
    allowed_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Allowed values"),
        help_text=_("For a choice field: one allowed value per line."),
    )

    class Meta:
        model = CustomField
        fields = [
            "name",
            "key",
            "group_name",
            "group_key",
            "type",
            "required",
            "readonly",
            "allowed_values",
        ]
        labels = {
            "name": _("Name"),
            "key": _("Key"),
            "group_name": _("Group name"),
            "group_key": _("Group key"),
            "type": _("Type"),
            "required": _("Required"),
            "readonly": _("Read-only"),
        }
        help_texts = {
            "key": _("The column of a CSV import is GROUP_KEY.KEY, e.g. PERSONAL.LOYALTY."),
            "group_key": _("The first part of the CSV column, e.g. PERSONAL."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["allowed_values"] = "\n".join(self.instance.allowed_values)

    def clean_allowed_values(self) -> list[str]:
        return list(dict.fromkeys(lines(self.cleaned_data["allowed_values"])))

    def clean(self):
        data = super().clean()
        if data.get("type") == CustomFieldType.CHOICE and not data.get("allowed_values"):
            self.add_error(
                "allowed_values", gettext("A choice field needs at least one allowed value.")
            )
        return data


EXTERNAL_KEY_HELP = form_help("aud-spring-prospects")


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "kind", "description", "external_key"]
        labels = {
            "name": _("Name"),
            "kind": _("Kind"),
            "description": _("Description"),
            "external_key": FORM_LABEL,
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2}), "kind": forms.RadioSelect}
        help_texts = {
            "kind": _("Static: a list you add contacts to. Dynamic: everyone matching a filter."),
            "external_key": EXTERNAL_KEY_HELP,
        }


class SegmentEditForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description", "external_key"]
        labels = {
            "name": _("Name"),
            "description": _("Description"),
            "external_key": FORM_LABEL,
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"external_key": EXTERNAL_KEY_HELP}


class MembersAddForm(forms.Form):
    contacts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        label=_("Contacts to add"),
        help_text=_("One email address or contact id per line (or separated by commas)."),
    )

    def clean_contacts(self) -> list[str]:
        text = self.cleaned_data["contacts"].replace(",", "\n").replace(";", "\n")
        items = list(dict.fromkeys(lines(text)))
        if len(items) > MAX_PASTED_LINES:
            raise forms.ValidationError(
                gettext("At most %(count)s lines at a time.") % {"count": MAX_PASTED_LINES}
            )
        return items


class UnsubscribedAddForm(forms.Form):
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        label=_("Email addresses"),
        help_text=_("One address per line."),
    )
    reason = forms.CharField(required=False, max_length=200, label=_("Reason"))

    def clean_emails(self) -> list[str]:
        items = lines(self.cleaned_data["emails"])
        if not items:
            raise forms.ValidationError(gettext("Enter at least one address."))
        if len(items) > MAX_PASTED_LINES:
            raise forms.ValidationError(
                gettext("At most %(count)s lines at a time.") % {"count": MAX_PASTED_LINES}
            )
        return items


class SuppressionAddForm(forms.Form):
    """A marketer suppresses one address; the address is checked by the service
    (contacts.suppression.suppression_add_manual), whose refusal becomes this form's error."""

    channel = forms.ChoiceField(
        choices=[(ChannelType.EMAIL, _("Email")), (ChannelType.SMS, "SMS")],
        label=_("Channel"),
        initial=ChannelType.EMAIL,
    )
    address = forms.CharField(
        max_length=254,
        label=_("Address"),
        help_text=_("An email address or an international phone number, e.g. +380942583691."),
    )
    detail = forms.CharField(
        required=False,
        max_length=1000,
        label=_("Why"),
        help_text=_("Shown beside the address, e.g. “asked by phone to stop”."),
    )


class SuppressionFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=254)
    channel = forms.ChoiceField(
        required=False,
        choices=[("", _("Any channel")), (ChannelType.EMAIL, _("Email")), (ChannelType.SMS, "SMS")],
        label=_("Channel"),
    )
    reason = forms.ChoiceField(
        required=False,
        choices=[("", _("Any reason")), *SuppressionReason.choices],
        label=_("Reason"),
    )
    lifted = forms.BooleanField(required=False, label=_("Show lifted ones"))
