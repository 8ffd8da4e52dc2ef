"""Forms of the promo code pages: shapes only; the rules are campaigns.promo.services."""

from django import forms

from campaigns.promo.services import (
    GENERATE_LENGTH_MAX,
    GENERATE_LENGTH_MIN,
    MAX_CODES_PER_CALL,
    PREFIX_MAX,
)


class PoolForm(forms.Form):
    name = forms.CharField(max_length=200)
    key = forms.CharField(
        max_length=50, help_text="Templates show one code of the pool per recipient: $!promo.KEY"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="One code per line, or a column named code; UTF-8. Duplicates are reported "
        "and skipped.",
    )


class GenerateForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=MAX_CODES_PER_CALL, initial=1000)
    prefix = forms.CharField(required=False, max_length=PREFIX_MAX, strip=False)
    length = forms.IntegerField(
        min_value=GENERATE_LENGTH_MIN,
        max_value=GENERATE_LENGTH_MAX,
        initial=8,
        help_text="Random characters after the prefix, without look-alikes (0/O, 1/I/L).",
    )
