import pytest

from templates.services import template_create, template_publish
from tests.support.smtp import SMTPSink, use_sink

ORDER_HTML = (
    "<p>Hello $!contact.firstName, order $data.get('orderId') is on its way.</p>"
    "#foreach($item in $data.get('items'))<p>$item.get('name') x $item.get('qty')</p>#end"
    '<p><a href="https://shop.example/orders">Your orders</a></p>'
)


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def mail_to_sink(settings, smtp_sink):
    """Django's email settings pointed at a real local SMTP server."""
    use_sink(settings, smtp_sink)
    return smtp_sink


@pytest.fixture
def email_template(db):
    template = template_create(
        name="Order shipped",
        subject="Order $data.get('orderId') shipped",
        from_name="Shop",
        from_email="orders@shop.example",
        html=ORDER_HTML,
    )
    template.published = template_publish(template=template)
    return template


@pytest.fixture
def sms_template(db):
    template = template_create(
        name="Code", channel="sms", sms_text="Your code is $data.get('code')", from_name="Shop"
    )
    template_publish(template=template)
    return template


@pytest.fixture
def messages_key(admin_user):
    from config.core.api_keys import api_key_create

    key, secret = api_key_create(name="messages", rights="messages", created_by=admin_user)
    key.secret = secret
    return key
