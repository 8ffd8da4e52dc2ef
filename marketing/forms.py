from typing import Any

from django import forms

from campaigns.send_rules import MAX_CAP, MAX_PERIOD_DAYS, Cap
from config.core.models import Organisation
from contacts.models import ChannelType


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
                label=f"{name}: at most",
                min_value=1,
                max_value=MAX_CAP,
                widget=forms.NumberInput(attrs={"aria-label": f"{name}: at most"}),
            )
            self.fields[f"{channel}_period"] = forms.IntegerField(
                required=False,
                label=f"{name}: messages in (days)",
                min_value=1,
                max_value=MAX_PERIOD_DAYS,
                widget=forms.NumberInput(attrs={"aria-label": f"{name}: days"}),
            )
            self.rows.append((name, self[f"{channel}_limit"], self[f"{channel}_period"]))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for channel in ChannelType.values:
            limit, period = data.get(f"{channel}_limit"), data.get(f"{channel}_period")
            if (limit is None) != (period is None) and not self.errors:
                self.add_error(
                    f"{channel}_period" if period is None else f"{channel}_limit",
                    "give both the number of messages and the days, or neither",
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
