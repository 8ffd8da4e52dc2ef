from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.send_rules import MAX_CAP, MAX_PERIOD_DAYS, Cap
from config.core.models import Organisation
from contacts.models import ChannelType
from marketing.event_params import PARAM_TYPES
from marketing.models import InvalidEventMode


class AuditLogFilterForm(forms.Form):
    """The audit log's filters; every one optional."""

    actor = forms.TypedChoiceField(label=_("Person"), required=False, coerce=int, empty_value=None)
    object_type = forms.TypedChoiceField(
        label=_("Object type"), required=False, coerce=int, empty_value=None
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(
        self, *args: Any, people: list[tuple[int, str]], types: list[tuple[int, str]], **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        everyone: list[tuple[Any, str]] = [("", _("Everyone"))]
        everything: list[tuple[Any, str]] = [("", _("Everything"))]
        self.fields["actor"].choices = everyone + people  # type: ignore[attr-defined]
        self.fields["object_type"].choices = everything + types  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return data


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = ["name", "default_sender_name", "default_sender_email", "time_zone", "language"]


class FrequencyCapsForm(forms.Form):
    """One row per channel: at most `limit` marketing messages per contact in `period` days;
    a row left empty has no cap. `caps()` gives the body campaigns.send_rules checks."""

    def __init__(self, *args: Any, caps: list[Cap] | None = None, **kwargs: Any) -> None:
        current = {cap.channel: cap for cap in caps or []}
        initial: dict[str, Any] = {}
        for channel in current:
            initial[f"{channel}_limit"] = current[channel].limit
            initial[f"{channel}_period"] = current[channel].period_days
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.rows = []
        for channel, name in ChannelType.choices:
            self.fields[f"{channel}_limit"] = forms.IntegerField(
                required=False,
                label=_("%(channel)s: at most") % {"channel": name},
                min_value=1,
                max_value=MAX_CAP,
                widget=forms.NumberInput(
                    attrs={"aria-label": _("%(channel)s: at most") % {"channel": name}}
                ),
            )
            self.fields[f"{channel}_period"] = forms.IntegerField(
                required=False,
                label=_("%(channel)s: messages in (days)") % {"channel": name},
                min_value=1,
                max_value=MAX_PERIOD_DAYS,
                widget=forms.NumberInput(
                    attrs={"aria-label": _("%(channel)s: days") % {"channel": name}}
                ),
            )
            self.rows.append((name, self[f"{channel}_limit"], self[f"{channel}_period"]))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for channel in ChannelType.values:
            limit, period = data.get(f"{channel}_limit"), data.get(f"{channel}_period")
            if (limit is None) != (period is None) and not self.errors:
                self.add_error(
                    f"{channel}_period" if period is None else f"{channel}_limit",
                    _("Give both the number of messages and the days, or neither."),
                )
        return data

    def caps(self) -> list[dict]:
        data = self.cleaned_data
        return [
            {
                "channel": channel,
                "limit": data[f"{channel}_limit"],
                "periodDays": data[f"{channel}_period"],
            }
            for channel in ChannelType.values
            if data.get(f"{channel}_limit") is not None
        ]


class DeclaredParamForm(forms.Form):
    """One row of an event type's declared params; a row without a name is left out."""

    name = forms.CharField(label=_("Param name"), max_length=200, required=False)
    type = forms.ChoiceField(label=_("Type"), choices=[], initial="string")
    required = forms.BooleanField(label=_("Required"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = list(PARAM_TYPES.items())  # type: ignore[attr-defined]


DeclaredParamFormSet = forms.formset_factory(DeclaredParamForm, extra=3, max_num=100)


class EventTypeDeclarationForm(forms.Form):
    invalid_mode = forms.ChoiceField(
        label=_("An event that breaks the declaration"), widget=forms.RadioSelect, choices=[]
    )
    flagged_start_workflows = forms.BooleanField(
        label=_("Flagged events still start workflows"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["invalid_mode"].choices = InvalidEventMode.choices  # type: ignore[attr-defined]
