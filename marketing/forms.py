from django import forms

from marketing.models import Organisation


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = ["name", "default_sender_name", "default_sender_email", "time_zone"]
