"""The form builder: the list of subscription forms, a form's settings with its embed codes,
and its statistics. Thin: every write is a marketing.signup.services call."""

from django.contrib import messages
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.core.errors import HeraldError, form_error
from config.core.roles import Role, has_role, role_required
from marketing.signup.forms import SignupFormForm
from marketing.signup.models import SignupForm
from marketing.signup.public import embed_snippets
from marketing.signup.services import (
    signup_form_create,
    signup_form_delete,
    signup_form_stats,
    signup_form_update,
)


def _rule_error(form: SignupFormForm, exc: HeraldError) -> None:
    name = exc.field.split("[")[0] if exc.field else ""
    form_error(form, exc, field=name if name in form.fields else None)


@role_required(Role.VIEWER)
def signup_list(request):
    forms = SignupForm.objects.annotate(
        views=Coalesce(Sum("daily_stats__views"), 0),
        submissions=Coalesce(Sum("daily_stats__submissions"), 0),
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
        except HeraldError as exc:
            _rule_error(form, exc)
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
            except HeraldError as exc:
                _rule_error(form, exc)
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
