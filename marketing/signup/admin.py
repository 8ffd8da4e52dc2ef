from django import forms
from django.contrib import admin

from marketing.signup.models import SignupForm, SignupSubmission
from marketing.signup.services import (
    SignupFormError,
    signup_form_check,
    signup_form_create,
    signup_form_delete,
    signup_form_update,
)

_EDITABLE = [
    "name",
    "key",
    "fields",
    "consent_enabled",
    "consent_text",
    "groups",
    "tags",
    "double_optin",
    "thank_you_message",
    "redirect_url",
    "language",
    "accent_color",
    "button_text",
    "enabled",
]


class SignupFormAdminForm(forms.ModelForm):
    redirect_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = SignupForm
        fields = _EDITABLE

    def clean(self):
        data = super().clean()
        candidate = SignupForm(pk=self.instance.pk)
        for name in _EDITABLE:
            if name != "groups" and name in data:
                setattr(candidate, name, data[name])
        try:
            signup_form_check(candidate, list(data.get("groups") or []))
        except SignupFormError as exc:
            for problem in exc.problems:
                name = problem.field.split("[")[0]
                self.add_error(name if name in self.fields else None, problem.message)
        return data


@admin.register(SignupForm)
class SignupFormAdmin(admin.ModelAdmin):
    form = SignupFormAdminForm
    list_display = ["name", "key", "language", "double_optin", "enabled", "created_at"]
    list_filter = ["enabled", "language"]
    search_fields = ["name", "key"]
    filter_horizontal = ["groups"]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in _EDITABLE}
        data["groups"] = list(data["groups"])
        if change:
            saved = signup_form_update(form=SignupForm.objects.get(pk=obj.pk), **data)
        else:
            saved = signup_form_create(**data)
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        # The groups were set by the service; the form's own m2m save would repeat it.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        signup_form_delete(form=obj)


@admin.register(SignupSubmission)
class SignupSubmissionAdmin(admin.ModelAdmin):
    """The consent records: read-only evidence of what each subscriber agreed to."""

    list_display = ["form", "contact", "created_contact", "consented_at", "ip", "created_at"]
    list_filter = ["form"]
    raw_id_fields = ["contact"]
    readonly_fields = [f.name for f in SignupSubmission._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
