"""The editor's fields for the logic blocks (marketing.workflows.logic_blocks): order and
engagement conditions, date and window waits, the A/B split's branches. StepForm inherits
them and asks this module for their initial values, their reading order and the step."""

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.abtest import MAX_VARIANTS
from campaigns.models import Campaign
from contacts.models import CustomField, CustomFieldType
from marketing.workflows import logic_blocks

WAIT_MODES = [
    ("duration", _("For a while")),
    ("time_of_day", _("Until a time of day")),
    ("date", _("Until a date (contact field or event parameter)")),
    ("window", _("Until the allowed sending window opens")),
]
ORDER_ATTR_LABELS = [
    ("status", _("Status")),
    ("total", _("Total")),
    ("currency", _("Currency")),
    ("items_count", _("Number of items")),
    ("sku", _("An item's SKU")),
    ("category", _("An item's category")),
]

WAIT_FIELDS = [
    "date_source",
    "date_field",
    "date_param",
    "offset_days",
    "yearly",
    "on_missing",
    "window_from",
    "window_to",
    "window_days",
]
CONDITION_FIELDS = [
    "order_source",
    "order_attr",
    "engagement",
    "scope",
    "campaign",
    "days",
]
SPLIT_FIELDS = ["split_by", "branches"]


class SplitBranch:
    """One branch row of the split's editor: letter, share and where it goes."""

    def __init__(self, key: str, percent: str = "", next_step: str = "", error: str = ""):
        self.key = key
        self.percent = percent
        self.next = next_step
        self.error = error


class LogicStepForm(forms.Form):
    # wait until a date
    date_source = forms.ChoiceField(
        choices=[("field", _("a contact's date field")), ("param", _("an event parameter"))],
        required=False,
        label=_("Date from"),
    )
    date_field = forms.ChoiceField(required=False, label=_("Contact's date field"))
    date_param = forms.CharField(
        max_length=100, required=False, label=_("Event parameter with the date (YYYY-MM-DD)")
    )
    offset_days = forms.IntegerField(
        min_value=-logic_blocks.MAX_OFFSET_DAYS,
        max_value=logic_blocks.MAX_OFFSET_DAYS,
        required=False,
        label=_("Days after the date (negative: before)"),
    )
    yearly = forms.BooleanField(required=False, label=_("Every year (the next anniversary)"))
    on_missing = forms.ChoiceField(
        choices=[("continue", _("go on at once")), ("exit", _("leave the workflow"))],
        required=False,
        label=_("When the date is missing or past"),
    )
    # conditions on orders and engagement
    order_source = forms.ChoiceField(
        choices=[("run", _("the run's order")), ("last", _("the contact's last order"))],
        required=False,
        label=_("Order"),
    )
    order_attr = forms.ChoiceField(
        choices=ORDER_ATTR_LABELS, required=False, label=_("Order attribute")
    )
    engagement = forms.ChoiceField(
        choices=[
            ("opened", _("opened")),
            ("clicked", _("clicked")),
            ("not_sent", _("was sent nothing")),
        ],
        required=False,
        label=_("The contact"),
    )
    scope = forms.ChoiceField(
        choices=[
            ("any", _("any message")),
            ("campaign", _("a message of a campaign")),
            ("run", _("a message of this run")),
        ],
        required=False,
        label=_("Which messages"),
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("-id"), required=False, label=_("Campaign")
    )
    days = forms.IntegerField(
        min_value=1, max_value=logic_blocks.MAX_DAYS, required=False, label=_("In the last N days")
    )
    # A/B split
    split_by = forms.ChoiceField(
        choices=[("run", _("each run")), ("contact", _("each contact (keeps its branch)"))],
        required=False,
        label=_("Draw a branch for"),
    )
    branches = forms.CharField(required=False, widget=forms.HiddenInput)

    def logic_setup(self) -> None:
        self.fields["date_field"].choices = [("", "—")] + [
            (str(field.pk), f"{field.name} ({field.pk})")
            for field in CustomField.objects.filter(type=CustomFieldType.DATE).order_by("name")
        ]

    @staticmethod
    def logic_initial(step: dict) -> dict:
        check = step.get("check") or {}
        return {
            "date_source": step.get("source", "field"),
            "date_field": str(step.get("field") or "") if step.get("mode") == "date" else "",
            "date_param": step.get("param", ""),
            "offset_days": step.get("offset_days", 0),
            "yearly": bool(step.get("yearly")),
            "on_missing": step.get("on_missing", "continue"),
            "order_source": check.get("order", "run"),
            "order_attr": check.get("attr", "status"),
            "engagement": check.get("event", "opened")
            if check.get("type") == "engagement"
            else "opened",
            "scope": check.get("scope", "any"),
            "campaign": check.get("campaign_id"),
            "days": check.get("days", 30),
            "split_by": step.get("by", "run"),
        }

    # -- the split's branch rows --

    def split_rows(self) -> list[SplitBranch]:
        """The branches to show: as posted (with errors), else saved, plus an empty row to
        add one while there are fewer than five. A row left without a share is removed."""
        if self.is_bound and self.add_prefix("split_key") in self.data:
            rows = getattr(self, "_split_rows", None) or self._posted_split_rows()
        else:
            rows = [
                SplitBranch(b["key"], str(b.get("percent", "")), b.get("next") or "")
                for b in self.step.get("branches") or []
            ]
        if len(rows) < MAX_VARIANTS and all(row.percent for row in rows):
            branches = [{"key": row.key} for row in rows]
            rows = [*rows, SplitBranch(logic_blocks.split_branch_key(branches))]
        return rows

    def _posted_split_rows(self) -> list[SplitBranch]:
        keys, percents, nexts = (
            self.data.getlist(self.add_prefix(name))
            for name in ("split_key", "split_percent", "split_next")
        )
        return [
            SplitBranch(
                key,
                (percents[i] if i < len(percents) else "").strip(),
                nexts[i] if i < len(nexts) else "",
            )
            for i, key in enumerate(keys)
        ]

    def _clean_branches(self) -> list[dict]:
        self._split_rows = self._posted_split_rows()
        targets = {choice for choice, _label in self.fields["next"].choices}
        branches = []
        for row in self._split_rows:
            if not row.percent:
                continue
            if not row.percent.isdigit() or not 1 <= int(row.percent) <= 99:
                row.error = gettext("The share must be a whole number from 1 to 99.")
            elif row.next not in targets:
                row.error = gettext("Choose a step of this workflow.")
            elif row.key in {branch["key"] for branch in branches} or not row.key:
                row.error = gettext("Two branches share a letter.")
            else:
                branches.append({"key": row.key, "percent": int(row.percent), "next": row.next})
        if any(row.error for row in self._split_rows):
            raise forms.ValidationError(gettext("Check the branches marked below."))
        problems = logic_blocks.split_problems({"by": "run", "branches": branches})
        if problems:
            raise forms.ValidationError(problems[0])
        return branches

    def clean_branches(self):
        if self.step["kind"] != "split":
            return []
        return self._clean_branches()

    def logic_clean(self, data: dict) -> None:
        """Cross-field rules of the date and window waits and the engagement check."""
        kind = self.step["kind"]
        if kind == "wait" and data.get("mode") == "date":
            if (data.get("date_source") or "field") == "field" and not data.get("date_field"):
                self.add_error("date_field", gettext("Choose the date field."))
            if data.get("date_source") == "param" and not (data.get("date_param") or "").strip():
                self.add_error("date_param", gettext("Name the event parameter."))
        if kind == "wait" and data.get("mode") == "window" and not data.get("window"):
            self.add_error("window_from", gettext("Set the hours of the window."))
        check_type = data.get("check_type") if kind == "condition" else None
        if (
            check_type == "engagement"
            and data.get("scope") == "campaign"
            and data.get("engagement") != "not_sent"
            and not data.get("campaign")
        ):
            self.add_error("campaign", gettext("Choose the campaign."))
        if check_type == "order" and data.get("op") != "exists":
            check = {
                "attr": data.get("order_attr"),
                "op": data.get("op"),
                "value": data.get("value"),
            }
            if not str(data.get("value") or "").strip():
                self.add_error("value", gettext("The value is missing."))
            elif problems := logic_blocks.order_value_problems(check):
                self.add_error("value", problems[0])

    def logic_step(self, step: dict) -> dict:
        """The logic block's part of the step (the wait's date or window, the order or
        engagement check, the split), written over `step`."""
        data = self.cleaned_data
        kind = step["kind"]
        if kind == "wait" and step.get("mode") == "date":
            source = data.get("date_source") or "field"
            step.update(
                source=source,
                offset_days=data.get("offset_days") or 0,
                yearly=bool(data.get("yearly")),
                on_missing=data.get("on_missing") or "continue",
            )
            if source == "field":
                step["field"] = data.get("date_field") or ""
            else:
                step["param"] = (data.get("date_param") or "").strip()
        elif kind == "wait" and step.get("mode") == "window":
            step["window"] = data.get("window")
        elif kind == "condition" and data.get("check_type") == "order":
            step["check"] = {
                "type": "order",
                "order": data.get("order_source") or "run",
                "attr": data.get("order_attr") or "status",
                "op": data.get("op") or "eq",
                "value": None if data.get("op") == "exists" else (data.get("value") or "").strip(),
            }
        elif kind == "condition" and data.get("check_type") == "engagement":
            check = {
                "type": "engagement",
                "event": data.get("engagement") or "opened",
                "scope": data.get("scope") or "any",
                "days": data.get("days") or 30,
            }
            if check["scope"] == "campaign" and data.get("campaign"):
                check["campaign_id"] = data["campaign"].pk
            if check["scope"] == "run" and data.get("message_step"):
                check["step"] = data["message_step"]
            step["check"] = check
        elif kind == "split":
            step.update(by=data.get("split_by") or "run", branches=data.get("branches") or [])
        return step
