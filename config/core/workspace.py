from django.utils.translation import gettext_lazy as _

from config.core.models import Organisation
from config.core.roles import user_role

NAVIGATION = [
    ("dashboard", _("Dashboard")),
    ("contacts_home", _("Contacts")),
    ("segments_home", _("Segments")),
    ("templates_home", _("Templates")),
    ("campaigns_home", _("Campaigns")),
    ("promo_home", _("Promo codes")),
    ("automation_home", _("Automation")),
    ("signup_home", _("Forms")),
    ("orders_home", _("Orders")),
    ("integrations_home", _("Integrations")),
    ("settings_home", _("Settings")),
]


def workspace(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "navigation": NAVIGATION,
        "current_role": user_role(user),
        "organisation": Organisation.load(),
    }
