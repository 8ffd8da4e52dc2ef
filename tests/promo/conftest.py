import pytest

from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink


@pytest.fixture
def mail_to_sink(settings):
    with SMTPSink() as sink:
        use_sink(settings, sink)
        yield sink


@pytest.fixture
def ann(db):
    return ContactFactory(email="ann@example.com", first_name="Ann")
