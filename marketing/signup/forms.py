"""The form builder's page form, and the public form a subscription form shows to visitors.

The public form checks every answer with the rules the subscribe call applies (the contact
channel normalisers, the custom field's type), so a refusal is shown by its field in the
form's language instead of coming back as an English API message."""

import time
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _

from contacts.channels import email_normalise, phone_normalise
from contacts.models import CustomField, CustomFieldType, Segment, SegmentKind
from contacts.validation import NAME_MAX, TEXT_FIELD_MAX
from marketing.signup.models import CUSTOM_PREFIX, FormLanguage, SignupForm

STARTED_SALT = "herald.signup.started"
# The hidden field robots fill: a name a form-filling robot cannot resist.
HONEYPOT = "website"
STARTED = "started"

BUILTIN_LABELS = {
    "email": _("Email"),
    "phone": _("Phone"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
}


def _field_name(key: str) -> str:
    """An HTML-safe name for a field key (`field:12` → `field_12`)."""
    return key.replace(":", "_")


# --- the builder -----------------------------------------------------------------------------


def available_fields() -> list[tuple[str, Any]]:
    """(key, default label) of every field a form may show: the contact's own, then each
    custom field."""
    return [
        *BUILTIN_LABELS.items(),
        *((f"{CUSTOM_PREFIX}{f.pk}", f.name) for f in CustomField.objects.order_by("name", "pk")),
    ]


class SignupFormForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    key = forms.CharField(
        label=_("Key"),
        max_length=50,
        help_text=_(
            "Letters, digits, hyphens and underscores; part of the form's address and of its "
            "event name, e.g. newsletter gives subscribeFromApi-newsletter."
        ),
    )
    language = forms.ChoiceField(
        label=_("Language of the form"),
        choices=FormLanguage.choices,
        help_text=_("The page's buttons and error messages are shown in this language."),
    )
    consent_enabled = forms.BooleanField(label=_("Ask for consent"), required=False)
    consent_text = forms.CharField(
        label=_("Consent text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown beside a checkbox people must tick; stored with each submission."),
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Add to segments"),
        required=False,
        queryset=Segment.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    tags = forms.CharField(
        label=_("Add tags"),
        required=False,
        max_length=1000,
        help_text=_("Comma-separated, e.g. newsletter, spring-promo."),
    )
    double_optin = forms.BooleanField(
        label=_("Double opt-in: new subscribers confirm by email"), required=False
    )
    thank_you_message = forms.CharField(
        label=_("Thank-you message"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    redirect_url = forms.CharField(
        label=_("Or send people to this address after they subscribe"),
        required=False,
        max_length=500,
        help_text=_("An http:// or https:// address, e.g. https://shop.example/welcome."),
    )
    accent_color = forms.CharField(
        label=_("Accent colour"), max_length=7, widget=forms.TextInput(attrs={"type": "color"})
    )
    button_text = forms.CharField(
        label=_("Button text"), required=False, max_length=60, help_text=_("Default: Subscribe.")
    )
    enabled = forms.BooleanField(label=_("Enabled: the form takes subscriptions"), required=False)

    def __init__(self, *args: Any, instance: SignupForm | None = None, **kwargs: Any) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "key": instance.key,
                "language": instance.language,
                "consent_enabled": instance.consent_enabled,
                "consent_text": instance.consent_text,
                "groups": list(instance.groups.all()),
                "tags": ", ".join(instance.tags),
                "double_optin": instance.double_optin,
                "thank_you_message": instance.thank_you_message,
                "redirect_url": instance.redirect_url,
                "accent_color": instance.accent_color,
                "button_text": instance.button_text,
                "enabled": instance.enabled,
            }
        kwargs.setdefault(
            "initial",
            {"double_optin": True, "enabled": True, "accent_color": "#1d4ed8", "language": "en"},
        )
        super().__init__(*args, **kwargs)
        groups = self.fields["groups"]
        assert isinstance(groups, forms.ModelMultipleChoiceField)
        groups.queryset = Segment.objects.filter(kind=SegmentKind.STATIC)
        shown = (
            {item["key"]: (n, item) for n, item in enumerate(instance.fields)} if instance else {}
        )
        if instance is None:
            shown = {"email": (0, {"key": "email", "label": "", "required": True})}
        self.rows = []
        for position, (key, default_label) in enumerate(available_fields()):
            name = _field_name(key)
            order, item = shown.get(key, (None, None))
            self.fields[f"show_{name}"] = forms.BooleanField(
                required=False,
                initial=item is not None,
                label=_("Show"),
                disabled=key == "email",
            )
            self.fields[f"label_{name}"] = forms.CharField(
                required=False,
                max_length=200,
                initial=(item or {}).get("label", ""),
                label=_("Label"),
                widget=forms.TextInput(attrs={"placeholder": default_label}),
            )
            self.fields[f"required_{name}"] = forms.BooleanField(
                required=False,
                initial=bool((item or {}).get("required")),
                label=_("Required"),
                disabled=key == "email",
            )
            self.fields[f"order_{name}"] = forms.IntegerField(
                required=False,
                min_value=1,
                max_value=999,
                initial=(order + 1) if order is not None else position + 1,
                label=_("Order"),
            )
            if key == "email":
                self.fields[f"show_{name}"].initial = True
                self.fields[f"required_{name}"].initial = True
            self.rows.append(
                {
                    "key": key,
                    "name": default_label,
                    "show": self[f"show_{name}"],
                    "label": self[f"label_{name}"],
                    "required": self[f"required_{name}"],
                    "order": self[f"order_{name}"],
                }
            )

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean_key(self) -> str:
        return self.cleaned_data["key"].strip()

    def field_list(self) -> list[dict[str, Any]]:
        chosen = []
        for position, (key, _label) in enumerate(available_fields()):
            name = _field_name(key)
            if key != "email" and not self.cleaned_data.get(f"show_{name}"):
                continue
            order = self.cleaned_data.get(f"order_{name}") or position + 1
            chosen.append(
                (
                    order,
                    position,
                    {
                        "key": key,
                        "label": self.cleaned_data.get(f"label_{name}") or "",
                        "required": key == "email"
                        or bool(self.cleaned_data.get(f"required_{name}")),
                    },
                )
            )
        return [item for _order, _position, item in sorted(chosen, key=lambda c: c[:2])]

    def service_values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        values = {
            name: data[name]
            for name in (
                "name",
                "key",
                "language",
                "consent_enabled",
                "consent_text",
                "tags",
                "double_optin",
                "thank_you_message",
                "redirect_url",
                "accent_color",
                "button_text",
                "enabled",
            )
        }
        values["groups"] = list(data["groups"])
        values["fields"] = self.field_list()
        return values


# --- the public form -------------------------------------------------------------------------


def started_token() -> str:
    return signing.dumps(time.time(), salt=STARTED_SALT)


def started_age(token: str) -> float | None:
    """Seconds since the page holding `token` was made, or None for a token we did not sign."""
    try:
        started = float(signing.loads(token, salt=STARTED_SALT, max_age=24 * 3600))
    except (signing.BadSignature, TypeError, ValueError):
        return None
    return time.time() - started


class PublicForm(forms.Form):
    """Built for one subscription form: its fields in its order and consent. The traps are
    read from the raw data: the honeypot (`website`) and the signed start time (`started`),
    which the page template writes itself."""

    def __init__(self, signup_form: SignupForm, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signup_form = signup_form
        custom = {
            f"{CUSTOM_PREFIX}{f.pk}": f
            for f in CustomField.objects.filter(
                pk__in=[
                    int(item["key"].removeprefix(CUSTOM_PREFIX))
                    for item in signup_form.fields
                    if item["key"].startswith(CUSTOM_PREFIX)
                ]
            )
        }
        self.keys: dict[str, str] = {}
        for item in signup_form.fields:
            key = item["key"]
            if key.startswith(CUSTOM_PREFIX):
                if key not in custom:
                    continue  # the custom field was deleted since the form was built
                field = _custom_input(custom[key], item)
                default_label: Any = custom[key].name
            else:
                field = _builtin_input(key, item)
                default_label = BUILTIN_LABELS[key]
            field.label = item.get("label") or default_label
            self.fields[_field_name(key)] = field
            self.keys[_field_name(key)] = key
        if signup_form.consent_enabled:
            self.fields["consent"] = forms.BooleanField(
                label=signup_form.consent_text,
                error_messages={"required": _("Tick this box to subscribe.")},
            )

    def visible(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields]

    def is_spam(self) -> bool:
        """A filled honeypot: answered like a success, stored nowhere."""
        return bool(self.data.get(HONEYPOT))

    def too_fast(self) -> bool:
        age = started_age(self.data.get(STARTED, ""))
        return age is None or age < settings.HERALD_SIGNUP_MIN_SECONDS

    def answers(self) -> dict[str, Any]:
        """The answers by field key, typed as the subscribe rule stores them."""
        return {
            key: _stored(self.cleaned_data.get(name))
            for name, key in self.keys.items()
            if self.cleaned_data.get(name) not in (None, "")
        }

    def clean_email(self) -> str:
        email, problem = email_normalise(self.cleaned_data["email"])
        if problem:
            raise forms.ValidationError(_("Enter a valid email address."))
        return email or ""

    def clean_phone(self) -> str:
        value = self.cleaned_data.get("phone")
        if not value:
            return ""
        phone, problem = phone_normalise(value)
        if problem:
            raise forms.ValidationError(
                _("Enter the number in international format, e.g. +380501234567.")
            )
        return phone or ""


def _stored(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and type(value).__name__ == "Decimal":
        return str(value)
    return value


def _builtin_input(key: str, item: dict[str, Any]) -> forms.Field:
    required = bool(item.get("required"))
    if key == "email":
        return forms.EmailField(
            required=True,
            max_length=254,
            widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        )
    if key == "phone":
        return forms.CharField(
            required=required,
            max_length=40,
            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        )
    autocomplete = "given-name" if key == "first_name" else "family-name"
    return forms.CharField(
        required=required,
        max_length=NAME_MAX,
        widget=forms.TextInput(attrs={"autocomplete": autocomplete}),
    )


def _custom_input(custom: CustomField, item: dict[str, Any]) -> forms.Field:
    required = bool(item.get("required"))
    kind = custom.type
    if kind == CustomFieldType.NUMBER:
        return forms.DecimalField(required=required, max_digits=30, decimal_places=10)
    if kind == CustomFieldType.DATE:
        return forms.DateField(
            required=required, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        )
    if kind == CustomFieldType.BOOLEAN:
        return forms.BooleanField(required=required)
    if kind == CustomFieldType.CHOICE:
        return forms.ChoiceField(
            required=required,
            choices=[("", "—"), *((v, v) for v in custom.allowed_values)],
        )
    return forms.CharField(required=required, max_length=TEXT_FIELD_MAX)
