from django import forms

from config.core.models import APIRight


class APIKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. 'Shop backend'.")
    rights = forms.ChoiceField(choices=APIRight.choices, initial=APIRight.FULL)
