"""The demo data keeps its variety (names with accents, an internationalised domain) and all
of it can be sent, through an SMTP server that does not offer SMTPUTF8 too."""

import pytest

from campaigns import lifecycle
from campaigns.models import Campaign, Delivery
from contacts.email_addresses import needs_smtputf8
from contacts.models import Contact
from marketing.demo import load_demo
from tests.campaigns.test_pipeline import send_all
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db


def test_every_demo_contact_can_be_mailed_by_a_server_without_smtputf8(settings):
    assert load_demo()
    contacts = list(Contact.objects.all())
    assert any(not c.first_name.isascii() or not c.last_name.isascii() for c in contacts)
    assert any(not c.email.isascii() for c in contacts), "an internationalised domain"
    assert not any(needs_smtputf8(c.email) for c in contacts)

    # Everyone, not only the demo's VIP segment.
    campaign = Campaign.objects.get(name="VIP welcome")
    campaign.segment = None
    campaign.audience_filter = {"tags": {"$in": ["vip", "newsletter"]}}
    campaign.save(update_fields=["segment", "audience_filter"])
    with SMTPSink(smtputf8=False) as sink:
        use_sink(settings, sink)
        run = lifecycle.campaign_launch_now(campaign=campaign)
        send_all(run)
        send_all(run)
    deliveries = Delivery.objects.filter(run=run)
    assert deliveries.count() == len(contacts)
    assert set(deliveries.values_list("status", flat=True)) == {"sent"}
    assert len(sink.received) == len(contacts)
    assert any(r.rcpt_tos[0].endswith("@xn--bcher-kva.example") for r in sink.received)
