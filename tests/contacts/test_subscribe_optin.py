import pytest

from config.celery import app

pytestmark = pytest.mark.django_db

SUBSCRIBE = "/api/v1/contact/subscribe"


@pytest.fixture
def eager_tasks():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def body(email: str) -> dict:
    return {"contact": {"channels": [{"type": "email", "value": email}]}, "groups": ["Subscribers"]}


def test_new_subscriber_gets_the_confirmation_email(
    api, full_key, mailoutbox, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(SUBSCRIBE, key=full_key, body=body("new@example.com"))

    assert response.status_code == 200
    assert [m.to for m in mailoutbox] == [["new@example.com"]]
    assert "/confirm/" in mailoutbox[0].body


def test_existing_confirmed_contact_gets_no_confirmation_email(
    api, full_key, mailoutbox, eager_tasks, django_capture_on_commit_callbacks
):
    from tests.contacts.factories import ContactFactory

    ContactFactory(email="known@example.com", confirmed=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(SUBSCRIBE, key=full_key, body=body("known@example.com"))

    assert response.status_code == 200
    assert mailoutbox == []
