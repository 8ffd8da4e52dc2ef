"""A small demo data set for the embedded default, loaded only into an empty Herald (no
contacts yet), so running it again adds nothing. Every write goes through the same services
as the pages and the API."""

import random
import secrets
import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from campaigns.lifecycle import campaign_create
from config.core.models import Organisation
from config.core.roles import Role
from contacts.custom_fields import custom_field_create
from contacts.models import Contact, ContactSource, CustomFieldType
from contacts.segments import segment_create
from contacts.services import contact_create_or_update
from templates.services import template_create, template_publish

DEMO_NAME = "Demo Shop"
FIRST_NAMES = ["Anna", "Ben", "Chloé", "Dmytro", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jon"]
LAST_NAMES = ["Smith", "Kovalenko", "Garcia", "Müller", "Tanaka", "Dubois", "Okafor", "Rossi"]
TOWNS = ["London", "Kyiv", "Berlin", "Lyon", "Osaka"]
# Every fourth contact at an internationalised domain: it goes out in punycode through any
# server. Mailboxes stay ASCII (Chloé Müller is chloe.muller…): a non-ASCII mailbox needs a
# server that offers SMTPUTF8, and the demo must send through whatever EMAIL_URL is set.
DOMAINS = ["example.com", "example.com", "example.com", "bücher.example"]
WELCOME_HTML = (
    "<h1>Welcome, $!contact.firstName!</h1>"
    "<p>#if($data.get('discount'))Here is $data.get('discount') off your first order."
    "#else Thanks for joining Demo Shop.#end</p>"
    '<p><a href="https://demo-shop.example/new">See what is new</a></p>'
    '<p><a href="%UNSUBSCRIBE_URL%">Unsubscribe</a></p>'
)


@transaction.atomic
def load_demo() -> bool:
    """Load the demo data into an empty Herald; True when it was loaded now."""

    if Contact.objects.exists():
        return False
    organisation = Organisation.load()
    organisation.name = DEMO_NAME
    organisation.default_sender_name = DEMO_NAME
    organisation.default_sender_email = "news@demo-shop.example"
    organisation.save()
    _load_marketing_data()
    return True


def _load_marketing_data() -> None:
    rng = random.Random(7)  # the same demo on every machine
    points = custom_field_create(name="Loyalty points", key="POINTS", type=CustomFieldType.NUMBER)
    for i in range(40):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        contact_create_or_update(
            data={
                "channels": [
                    {"type": "email", "value": _demo_email(f"{first}.{last}{i}", DOMAINS[i % 4])},
                    {"type": "sms", "value": f"+38050{1234000 + i:07d}"},
                ],
                "firstName": first,
                "lastName": last,
                "address": {"town": rng.choice(TOWNS)},
                "tags": ["vip"] if i % 5 == 0 else ["newsletter"],
                "fields": [{"id": points.pk, "value": rng.randint(0, 500)}],
            },
            source=ContactSource.IMPORT,
        )
    vip = segment_create(
        name="VIP customers",
        kind="dynamic",
        filter={"tags": {"$in": ["vip"]}, f"fields.{points.pk}": {"$gte": 100}},
        description="Tagged vip with at least 100 loyalty points.",
    )
    welcome = template_create(
        name="Welcome",
        subject="Welcome to Demo Shop, $!contact.firstName",
        from_name=DEMO_NAME,
        from_email="news@demo-shop.example",
        html=WELCOME_HTML,
    )
    template_publish(template=welcome)
    campaign_create(
        data={
            "name": "VIP welcome",
            "type": "blast",
            "channels": ["email"],
            "audienceId": vip.pk,
            "templateId": welcome.pk,
            "status": "draft",
        }
    )


def _demo_email(mailbox: str, domain: str) -> str:
    """An ASCII mailbox for a name with accents: letters without their marks."""
    ascii_mailbox = unicodedata.normalize("NFKD", mailbox).encode("ascii", "ignore").decode()
    return f"{ascii_mailbox}@{domain}".lower()


def ensure_admin(username: str = "admin") -> str | None:
    """Create the first admin with a generated password and return it; None if one exists."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(
        username=username, email="admin@demo-shop.example", password=password
    )
    user.groups.add(Group.objects.get_or_create(name=Role.ADMIN.value)[0])
    return password
