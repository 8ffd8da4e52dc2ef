"""Forms of the integrations pages. The connect form is built from a provider kind's `fields`;
it only shapes input, and integrations.services checks it (types, required settings, the
kind's own rules) so that pages and admin refuse the same things with the same words."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.delivery.providers import Provider, SettingField
from config.core.errors import HeraldError
from config.core.models import APIRight, Integration
from config.core.secrets import secrets_stored
from contacts.models import ChannelType

# Settings' form fields carry this prefix: a provider's setting may share a name with the
# form's own fields (`name`) without clashing.
SETTING_PREFIX = "setting_"
WIDGETS: dict[str, type[forms.Widget]] = {
    "url": forms.URLInput,
    "email": forms.EmailInput,
    "int": forms.NumberInput,
    "float": forms.NumberInput,
    "textarea": forms.Textarea,
}


class APIKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Where the key is used, e.g. “Shop backend”."),
    )
    rights = forms.ChoiceField(label=_("Rights"), choices=APIRight.choices, initial=APIRight.FULL)


def channel_label(channel: str) -> str:
    return str(dict(ChannelType.choices).get(channel, channel))


def _setting_field(spec: SettingField, *, stored_secret: bool) -> forms.Field:
    help_parts = [spec.help] if spec.help else []
    required_mark = spec.required and not (spec.secret and stored_secret)
    label = spec.label + (" *" if required_mark and spec.kind != "bool" else "")
    if spec.secret:
        if stored_secret:
            help_parts.append(gettext("Stored and never shown; leave blank to keep it."))
        help_parts.append(gettext("env:NAME reads it from the environment variable NAME instead."))
        # Not stripped: a credential is taken exactly as pasted.
        return forms.CharField(
            label=label,
            required=False,
            strip=False,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=" ".join(help_parts),
        )
    help_text = " ".join(help_parts)
    if spec.kind == "bool":
        return forms.BooleanField(label=label, required=False, help_text=help_text)
    if spec.kind == "choice":
        choices = [("", "—"), *spec.choices] if not spec.required else list(spec.choices)
        return forms.ChoiceField(label=label, required=False, choices=choices, help_text=help_text)
    widget_class = WIDGETS.get(spec.kind, forms.TextInput)
    attrs: dict[str, Any] = {}
    if spec.kind == "float":
        attrs["step"] = "any"
    if spec.kind == "textarea":
        attrs.update(rows=5, spellcheck="false")
    return forms.CharField(
        label=label,
        required=False,
        strip=spec.kind != "textarea",
        widget=widget_class(attrs=attrs),
        help_text=help_text,
    )


class IntegrationForm(forms.Form):
    """Connect or edit one integration of a provider kind. Every input is optional here: the
    service says what is missing, in the same words admin shows."""

    name = forms.CharField(
        max_length=100,
        required=False,
        label=_("Name *"),
        help_text=_("e.g. “Transactional SMTP”."),
    )
    channels = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label=_("Channels it serves")
    )
    is_default = forms.BooleanField(
        required=False,
        label=_("Default for these channels"),
        help_text=_(
            "Messages on its channels go through it unless a campaign names another; "
            "another integration sharing a channel stops being the default."
        ),
    )
    enabled = forms.BooleanField(required=False, label=_("Enabled"))
    rate_limit = forms.CharField(
        required=False,
        label=_("Rate limit (messages per second)"),
        widget=forms.NumberInput(attrs={"step": "any", "min": "0"}),
        help_text=_(
            "Across all workers; 0 = no limit. Herald slows down on its own when the "
            "provider throttles."
        ),
    )

    def __init__(
        self,
        data: Any = None,
        *,
        provider: type[Provider],
        integration: Integration | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.provider = provider
        self.integration = integration
        channels_field = self.fields["channels"]
        assert isinstance(channels_field, forms.MultipleChoiceField)
        channels_field.choices = [
            (channel, channel_label(channel)) for channel in sorted(provider.channels)
        ]
        stored = {
            name
            for name, value in (
                secrets_stored(integration.secrets_sealed) if integration else {}
            ).items()
            if value
        }
        for spec in provider.fields:
            self.fields[SETTING_PREFIX + spec.name] = _setting_field(
                spec, stored_secret=spec.name in stored
            )

    @classmethod
    def initial_new(cls, provider: type[Provider]) -> dict[str, Any]:
        initial: dict[str, Any] = {"enabled": True, "rate_limit": "0"}
        if len(provider.channels) == 1:
            initial["channels"] = list(provider.channels)
        for spec in provider.fields:
            if spec.default is not None and not spec.secret:
                initial[SETTING_PREFIX + spec.name] = spec.default
        return initial

    @classmethod
    def initial_for(cls, integration: Integration, provider: type[Provider]) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": integration.name,
            "channels": list(integration.channels),
            "is_default": integration.is_default,
            "enabled": integration.enabled,
            "rate_limit": f"{integration.rate_limit:g}",
        }
        stored = integration.settings or {}
        for spec in provider.fields:
            if spec.secret:
                continue  # never filled back
            value = stored.get(spec.name, spec.default)
            if value is not None:
                initial[SETTING_PREFIX + spec.name] = value
        return initial

    def setting_fields(self) -> list[forms.BoundField]:
        return [self[SETTING_PREFIX + spec.name] for spec in self.provider.fields]

    def values(self) -> dict[str, Any]:
        """The settings and secrets by the provider's field names."""
        data = self.cleaned_data
        return {spec.name: data.get(SETTING_PREFIX + spec.name) for spec in self.provider.fields}

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data.get("name") or "",
            "channels": list(data.get("channels") or []),
            "is_default": bool(data.get("is_default")),
            "enabled": bool(data.get("enabled")),
            "rate_limit": data.get("rate_limit") or 0,
            "values": self.values(),
        }

    def service_error(self, exc: HeraldError) -> None:
        """Show the service's refusal on the field it names (a setting by its name)."""
        name = exc.field
        if name and SETTING_PREFIX + name in self.fields:
            name = SETTING_PREFIX + name
        self.add_error(name if name in self.fields else None, exc.message or str(exc))

    def read_only(self) -> None:
        for field in self.fields.values():
            field.disabled = True
