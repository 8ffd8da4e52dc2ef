"""The A/B test and resend form of a campaign's page. It only shapes input: `body()` is the
CRM campaigns API's `abTest` and `resend`, which campaigns.lifecycle checks and saves, so
the page and the API share their rules and error messages."""

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.abtest import MAX_VARIANTS, letter
from campaigns.models import ABTest, CampaignResend, WinnerMetric, WinnerSelection
from templates.models import MessageTemplate

VARIANT_FIELDS = ("subject", "preheader", "from_name", "template")


class ABTestForm(forms.Form):
    enabled = forms.BooleanField(required=False, label=_("Test variants of this campaign"))
    test_percent = forms.IntegerField(
        required=False,
        initial=20,
        # xgettext:no-python-format
        label=_("Test share (% of the audience)"),
        widget=forms.NumberInput(attrs={"min": 1, "max": 50}),
        help_text=_("The variants go to this share; the winner goes to the rest."),
    )
    winner_metric = forms.ChoiceField(choices=WinnerMetric.choices, label=_("Winner by"))
    wait_hours = forms.FloatField(
        required=False,
        initial=4,
        label=_("Wait before picking (hours)"),
        widget=forms.NumberInput(attrs={"min": 0, "step": "any"}),
    )
    winner_selection = forms.ChoiceField(choices=WinnerSelection.choices, label=_("Winner chosen"))
    resend_enabled = forms.BooleanField(required=False, label=_("Resend to non-openers"))
    resend_after_hours = forms.FloatField(
        required=False,
        initial=48,
        label=_("After (hours)"),
        widget=forms.NumberInput(attrs={"min": 1, "step": "any"}),
        help_text=_("Counted from the end of the first send."),
    )
    resend_subject = forms.CharField(required=False, max_length=500, label=_("New subject"))

    def __init__(self, *args: Any, channel: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        templates = MessageTemplate.objects.order_by("name")
        if channel:
            templates = templates.filter(channel=channel)
        for position in range(MAX_VARIANTS):
            name = letter(position)
            self.fields[f"v{position}_subject"] = forms.CharField(
                required=False,
                max_length=500,
                label=gettext("%(variant)s: subject") % {"variant": name},
            )
            self.fields[f"v{position}_preheader"] = forms.CharField(
                required=False,
                max_length=500,
                label=gettext("%(variant)s: preheader") % {"variant": name},
            )
            self.fields[f"v{position}_from_name"] = forms.CharField(
                required=False,
                max_length=200,
                label=gettext("%(variant)s: sender name") % {"variant": name},
            )
            self.fields[f"v{position}_template"] = forms.ModelChoiceField(
                queryset=templates,
                required=False,
                label=gettext("%(variant)s: content") % {"variant": name},
                empty_label=_("The campaign's template"),
            )

    def variant_rows(self) -> list[tuple[str, list]]:
        return [
            (letter(p), [self[f"v{p}_{name}"] for name in VARIANT_FIELDS])
            for p in range(MAX_VARIANTS)
        ]

    @classmethod
    def initial_for(cls, test: ABTest | None, resend: CampaignResend | None) -> dict:
        initial: dict[str, Any] = {}
        if test is not None:
            initial.update(
                enabled=True,
                test_percent=test.test_percent,
                winner_metric=test.winner_metric,
                wait_hours=test.wait.total_seconds() / 3600,
                winner_selection=test.winner_selection,
            )
            for variant in test.variants.all():
                p = variant.position
                initial[f"v{p}_subject"] = variant.subject
                initial[f"v{p}_preheader"] = variant.preheader
                initial[f"v{p}_from_name"] = variant.from_name
                initial[f"v{p}_template"] = variant.template_id
        if resend is not None:
            initial.update(
                resend_enabled=True,
                resend_after_hours=resend.after.total_seconds() / 3600,
                resend_subject=resend.subject,
            )
        return initial

    def body(self) -> dict:
        """The campaign body's `abTest` and `resend` (null: off)."""
        data = self.cleaned_data
        ab = None
        if data["enabled"]:
            variants = []
            for p in range(MAX_VARIANTS):
                values = {name: data.get(f"v{p}_{name}") for name in VARIANT_FIELDS}
                # A and B always (a blank variant sends the campaign as it is); C to E
                # when filled in.
                if p >= 2 and not any(values.values()):
                    continue
                variants.append(
                    {
                        "subject": values["subject"] or "",
                        "preheader": values["preheader"] or "",
                        "fromName": values["from_name"] or "",
                        "templateId": values["template"].pk if values["template"] else None,
                    }
                )
            ab = {
                "variants": variants,
                "testPercent": data["test_percent"] if data["test_percent"] is not None else 20,
                "winnerMetric": data["winner_metric"],
                "waitHours": data["wait_hours"] if data["wait_hours"] is not None else 4,
                "winnerSelection": data["winner_selection"],
            }
        resend = None
        if data["resend_enabled"]:
            resend = {
                "afterHours": data["resend_after_hours"],
                "subject": data["resend_subject"],
            }
        return {"abTest": ab, "resend": resend}


# Body paths of the lifecycle's errors → form fields; the longest prefix wins.
ERROR_FIELDS = {
    "abTest": "enabled",
    "abTest.testPercent": "test_percent",
    "abTest.winnerMetric": "winner_metric",
    "abTest.waitHours": "wait_hours",
    "abTest.winnerSelection": "winner_selection",
    "resend": "resend_enabled",
    "resend.afterHours": "resend_after_hours",
    "resend.subject": "resend_subject",
}
VARIANT_KEYS = {
    "subject": "subject",
    "preheader": "preheader",
    "fromName": "from_name",
    "templateId": "template",
}


def error_field(key: str) -> str | None:
    parts = key.split(".")
    if len(parts) >= 3 and parts[:2] == ["abTest", "variants"] and parts[2].isdigit():
        if len(parts) == 4 and parts[3] in VARIANT_KEYS:
            return f"v{parts[2]}_{VARIANT_KEYS[parts[3]]}"
        return None
    while parts:
        name = ERROR_FIELDS.get(".".join(parts))
        if name:
            return name
        parts.pop()
    return None
