from django import forms

from config.core.models import Organisation


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = ["name", "default_sender_name", "default_sender_email", "time_zone"]
