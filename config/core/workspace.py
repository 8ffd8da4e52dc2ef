from config.core.models import Organisation
from config.core.roles import user_role

NAVIGATION = [
    ("dashboard", "Dashboard"),
    ("contacts_home", "Contacts"),
    ("segments_home", "Segments"),
    ("templates_home", "Templates"),
    ("campaigns_home", "Campaigns"),
    ("promo_home", "Promo codes"),
    ("automation_home", "Automation"),
    ("orders_home", "Orders"),
    ("integrations_home", "Integrations"),
    ("settings_home", "Settings"),
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
