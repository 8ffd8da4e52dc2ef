"""Roles: admin, marketer, viewer — Django groups whose permissions are kept in sync.

A user's role is the strongest group they belong to; superusers are admins. Pages declare the
weakest role that may use them (`role_required`), the API maps roles to rights the same way.
"""

from functools import wraps
from typing import TYPE_CHECKING

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import TextChoices
from django.utils.translation import gettext, pgettext_lazy


class Role(TextChoices):
    ADMIN = "admin", pgettext_lazy("role", "Admin")
    MARKETER = "marketer", pgettext_lazy("role", "Marketer")
    VIEWER = "viewer", pgettext_lazy("role", "Viewer")


# Strength order: a role may do everything the roles after it may.
_RANK = {Role.ADMIN: 3, Role.MARKETER: 2, Role.VIEWER: 1}
# Apps whose data marketers edit; viewers only read them.
MARKETING_APPS = ("core", "contacts", "templates", "campaigns", "marketing")
# Models that stay admin-only even inside those apps.
ADMIN_ONLY_MODELS = {("core", "organisation"), ("core", "apikey")}


def user_role(user) -> Role | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    for role in (Role.ADMIN, Role.MARKETER, Role.VIEWER):
        if role.value in names:
            return role
    return None


def has_role(user, minimum: Role) -> bool:
    role = user_role(user)
    return role is not None and _RANK[role] >= _RANK[minimum]


def _role_needed(role: Role) -> str:
    """The reason a page's 403 shows."""
    return gettext("This page needs the %(role)s role.") % {"role": str(role.label).lower()}


def role_required(minimum: Role):
    """Decorator for function views: login first, then the role, else 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, minimum):
                raise PermissionDenied(_role_needed(minimum))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


if TYPE_CHECKING:
    # The mixin always stands in front of a View: tells the checker where `super().dispatch`
    # goes. At run time the view class supplies it.
    from django.views import View as _MixedIntoView
else:
    _MixedIntoView = object


class RoleRequiredMixin(AccessMixin, _MixedIntoView):
    """Class-based twin of `role_required`; set `required_role` on the view."""

    required_role: Role = Role.VIEWER

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, self.required_role):
            raise PermissionDenied(_role_needed(self.required_role))
        return super().dispatch(request, *args, **kwargs)


def sync_role_groups(**kwargs) -> None:
    """Create the three groups and give each the permissions of its role."""
    perms = Permission.objects.select_related("content_type")
    marketing_perms = [
        p
        for p in perms
        if p.content_type.app_label in MARKETING_APPS
        and (p.content_type.app_label, p.content_type.model) not in ADMIN_ONLY_MODELS
    ]
    admin, _ = Group.objects.get_or_create(name=Role.ADMIN.value)
    admin.permissions.set(perms)
    marketer, _ = Group.objects.get_or_create(name=Role.MARKETER.value)
    marketer.permissions.set(marketing_perms)
    viewer, _ = Group.objects.get_or_create(name=Role.VIEWER.value)
    viewer.permissions.set([p for p in marketing_perms if p.codename.startswith("view_")])
