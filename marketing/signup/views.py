"""The form builder: the list of subscription forms, a form's settings with its embed codes,
and its statistics. Thin: every write is a marketing.signup.services call."""

from django.contrib import messages
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from config.core.roles import Role, has_role, role_required
from marketing.signup.forms import SignupFormForm
from marketing.signup.models import SignupForm
from marketing.signup.public import embed_snippets
from marketing.signup.services import (
    SignupFormError,
    signup_form_create,
    signup_form_delete,
    signup_form_stats,
    signup_form_update,
)

# The rules' refusals in the marketer's language, by code (the API answers them in English).
PAGE_MESSAGES = {
    "required": gettext_lazy("This field is required."),
    "key": gettext_lazy("Use 1 to 50 letters, digits, hyphens or underscores."),
    "key_taken": gettext_lazy("Another form already uses this key."),
    "fields": gettext_lazy("Check the fields: one of them no longer exists."),
    "email_missing": gettext_lazy("A form needs the email field."),
    "redirect_url": gettext_lazy("Enter an address that starts with http:// or https://."),
    "accent_color": gettext_lazy("Choose a colour like #1d4ed8."),
    "consent_text": gettext_lazy("Write the consent text people agree to."),
    "language": gettext_lazy("Choose one of the languages offered."),
    "tags": gettext_lazy("Each tag may have at most 100 characters."),
    "groups": gettext_lazy("Subscribers can join static segments only."),
}


def _rule_errors(form: SignupFormForm, exc: SignupFormError) -> None:
    for problem in exc.problems:
        name = problem.field.split("[")[0]
        message = PAGE_MESSAGES.get(problem.code, problem.message)
        form.add_error(name if name in form.fields else None, message)


@role_required(Role.VIEWER)
def signup_list(request):
    forms = SignupForm.objects.annotate(
        view_count=Coalesce(Sum("daily_stats__views"), 0),
        submission_count=Coalesce(Sum("daily_stats__submissions"), 0),
    ).order_by("name", "pk")
    return render(
        request,
        "marketing/signup/list.html",
        {
            "forms": forms,
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


def _builder(request, *, instance: SignupForm | None, form: SignupFormForm, status: int = 200):
    return render(
        request,
        "marketing/signup/builder.html",
        {
            "signup": instance,
            "form": form,
            "snippets": embed_snippets(instance) if instance else None,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


@role_required(Role.MARKETER)
def signup_new(request):
    form = SignupFormForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = signup_form_create(**form.service_values())
        except SignupFormError as exc:
            _rule_errors(form, exc)
        else:
            messages.success(request, _("Form “%(name)s” created.") % {"name": created.name})
            return redirect("signup_edit", pk=created.pk)
    return _builder(request, instance=None, form=form, status=400 if form.errors else 200)


@role_required(Role.VIEWER)
def signup_edit(request, pk: int):
    instance = get_object_or_404(SignupForm, pk=pk)
    form = SignupFormForm(instance=instance)
    if request.method == "POST":
        if not has_role(request.user, Role.MARKETER):
            return HttpResponse(status=403)
        form = SignupFormForm(request.POST, instance=instance)
        if form.is_valid():
            try:
                signup_form_update(form=instance, **form.service_values())
            except SignupFormError as exc:
                _rule_errors(form, exc)
            else:
                messages.success(request, _("Form saved."))
                return redirect("signup_edit", pk=instance.pk)
    return _builder(request, instance=instance, form=form, status=400 if form.errors else 200)


@role_required(Role.VIEWER)
def signup_stats(request, pk: int):
    instance = get_object_or_404(SignupForm, pk=pk)
    stats = signup_form_stats(form=instance)
    chart = {
        "labels": [day.day.isoformat() for day in stats.days],
        "views": [day.views for day in stats.days],
        "submissions": [day.submissions for day in stats.days],
        "confirmed": [day.confirmed for day in stats.days],
        "names": {
            "views": _("Views"),
            "submissions": _("Submissions"),
            "confirmed": _("Confirmed"),
        },
    }
    return render(
        request,
        "marketing/signup/stats.html",
        {
            "signup": instance,
            "stats": stats,
            "days": list(reversed(stats.days)),
            "chart": chart,
        },
    )


@require_POST
@role_required(Role.MARKETER)
def signup_delete(request, pk: int):
    instance = get_object_or_404(SignupForm, pk=pk)
    signup_form_delete(form=instance)
    messages.success(request, _("Form “%(name)s” deleted.") % {"name": instance.name})
    return redirect("signup_home")
