import pytest

from contacts.models import CustomFieldType
from marketing.signup.services import signup_form_create
from tests.contacts.factories import CustomFieldFactory, SegmentFactory


@pytest.fixture(autouse=True)
def _no_minimum_fill_time(settings):
    """Test clients answer in milliseconds; the tests of the minimum time set it back."""
    settings.HERALD_SIGNUP_MIN_SECONDS = 0


@pytest.fixture
def birthday(db):
    return CustomFieldFactory(name="Birthday", key="BIRTHDAY", type=CustomFieldType.DATE)


@pytest.fixture
def newsletter_segment(db):
    return SegmentFactory(name="Newsletter readers")


@pytest.fixture
def signup(db, birthday, newsletter_segment):
    return signup_form_create(
        name="Spring newsletter",
        key="spring",
        fields=[
            {"key": "email", "label": "Your email", "required": True},
            {"key": "first_name", "label": "", "required": True},
            {"key": f"field:{birthday.pk}", "label": "Birthday", "required": False},
        ],
        consent_enabled=True,
        consent_text="I agree to get the spring newsletter.",
        groups=[newsletter_segment],
        tags=["spring"],
        thank_you_message="Welcome aboard!",
    )
