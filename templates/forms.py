"""Forms of the template pages. They check the shape of page input; the rules (Velocity
syntax, sanitising, addresses) belong to templates.services, whose errors the forms show
next to their fields with line and column."""

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.core.external_keys import external_key_form_field
from contacts.models import ChannelType
from templates.errors import TemplateFieldError

CONTENT_FIELDS = (
    "name",
    "channel",
    "subject",
    "preheader",
    "from_name",
    "from_email",
    "html",
    "text",
    "sms_text",
)
_SOURCE = {"rows": 14, "spellcheck": "false", "class": "source"}


# The Velocity source fields a template and each of its language versions have.
def _html_field() -> forms.CharField:
    return forms.CharField(
        required=False, label="HTML", widget=forms.Textarea(attrs=_SOURCE), strip=False
    )


def _text_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label=_("Plain text"),
        widget=forms.Textarea(attrs={**_SOURCE, "rows": 6}),
        strip=False,
        help_text=_("Leave empty to derive it from the HTML."),
    )


def _sms_text_field(help_text: str = "") -> forms.CharField:
    return forms.CharField(
        required=False,
        label=_("SMS / messenger text"),
        widget=forms.Textarea(attrs={**_SOURCE, "rows": 4}),
        strip=False,
        help_text=help_text,
    )


def located(error: TemplateFieldError) -> str:
    if error.line is None:
        return error.message
    return gettext("Line %(line)s, column %(column)s: %(problem)s") % {
        "line": error.line,
        "column": error.column,
        "problem": error.message,
    }


class TemplateForm(forms.Form):
    # Required by the service, not here: a missing name is reported together with the
    # template's other problems instead of hiding them until it is filled in.
    name = forms.CharField(
        max_length=200,
        required=False,
        label=_("Name *"),
        widget=forms.TextInput(attrs={"required": True}),
    )
    channel = forms.ChoiceField(
        label=_("Channel"), choices=ChannelType.choices, initial=ChannelType.EMAIL
    )
    subject = forms.CharField(label=_("Subject"), max_length=500, required=False)
    preheader = forms.CharField(
        label=_("Preheader"),
        max_length=500,
        required=False,
        help_text=_("Shown after the subject in inbox lists."),
    )
    from_name = forms.CharField(max_length=200, required=False, label=_("From name"))
    # Checked by the service, which names the problem the same way the API does.
    from_email = forms.CharField(max_length=254, required=False, label=_("From email"))
    html = _html_field()
    text = _text_field()
    sms_text = _sms_text_field(_("The message of every channel other than email."))
    # Checked by the service (format, uniqueness), as for the API.
    external_key = external_key_form_field("tpl-spring-launch")

    @classmethod
    def for_template(cls, template, data=None) -> "TemplateForm":
        initial = {field: getattr(template, field) for field in CONTENT_FIELDS}
        initial["external_key"] = template.external_key or ""
        if template.text_generated:
            initial["text"] = ""  # derived: it follows the HTML until someone writes one
        return cls(data, initial=initial)

    def service_values(self) -> dict[str, str | None]:
        values: dict[str, str | None] = {
            field: self.cleaned_data.get(field) or "" for field in CONTENT_FIELDS
        }
        values["external_key"] = self.cleaned_data.get("external_key") or None
        return values

    def add_service_errors(self, errors: list[TemplateFieldError]) -> None:
        for error in errors:
            if error.field in self.fields:
                self.add_error(error.field, located(error))
            else:
                self.add_error(None, str(error))


class TemplateSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label=_("Search"))
    channel = forms.ChoiceField(
        label=_("Channel"), choices=[("", _("All channels")), *ChannelType.choices], required=False
    )


class PreviewForm(forms.Form):
    """The preview pane's own inputs, posted together with the editor's fields."""

    preview_contact = forms.CharField(
        required=False,
        max_length=254,
        label=_("Contact"),
        help_text=_("Id or email of a contact; empty for the built-in sample contact."),
    )
    preview_data = forms.CharField(
        required=False,
        strip=False,
        label=_("Sample data ($data), JSON"),
        widget=forms.Textarea(
            attrs={"rows": 5, "spellcheck": "false", "class": "source", "placeholder": "{}"}
        ),
    )


class TemplateLanguageForm(forms.Form):
    """A language version of a template; its rules are templates.languages'."""

    language_code = forms.CharField(
        max_length=10,
        label=_("Language code"),
        help_text=_(
            "As contacts store it: en, uk, pt-BR (case does not matter; en-GB contacts "
            "get the en version when there is no en-gb one)."
        ),
    )
    subject = forms.CharField(label=_("Subject"), max_length=500, required=False)
    preheader = forms.CharField(label=_("Preheader"), max_length=500, required=False)
    html = _html_field()
    text = _text_field()
    sms_text = _sms_text_field()

    FIELDS = ("language_code", "subject", "preheader", "html", "text", "sms_text")

    @classmethod
    def for_language(cls, language, data=None) -> "TemplateLanguageForm":
        initial = {field: getattr(language, field) for field in cls.FIELDS}
        if language.text_generated:
            initial["text"] = ""
        return cls(data, initial=initial)

    def service_values(self) -> dict[str, str]:
        return {field: self.cleaned_data.get(field) or "" for field in self.FIELDS}

    def add_service_errors(self, errors: list[TemplateFieldError]) -> None:
        for error in errors:
            if error.field in self.fields:
                self.add_error(error.field, located(error))
            else:
                self.add_error(None, str(error))
