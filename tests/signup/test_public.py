"""The hosted subscription page: a submission subscribes like the subscribe API, with consent
recorded; the traps (honeypot, minimum fill time, rate limit) and a disabled form."""

import pytest
from django.urls import reverse

from contacts.models import Contact, SegmentMembership
from marketing.models import Event
from marketing.signup.forms import started_token
from marketing.signup.models import SignupDailyStat, SignupSubmission
from marketing.signup.services import signup_form_stats, signup_form_update
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db


def answers(birthday, **overrides):
    data = {
        "email": "Ola@Example.com",
        "first_name": "Ola",
        f"field_{birthday.pk}": "1990-04-01",
        "consent": "on",
        "website": "",
        "started": started_token(),
    }
    data.update(overrides)
    return data


def test_submission_creates_an_unconfirmed_contact_with_event_groups_tags_and_consent(
    client, signup, birthday, newsletter_segment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/f/spring/",
            answers(birthday),
            HTTP_USER_AGENT="Firefox/140",
            REMOTE_ADDR="203.0.113.9",
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("signup_thanks", args=["spring"])
    contact = Contact.objects.get(email="ola@example.com")
    assert not contact.confirmed
    assert contact.first_name == "Ola"
    assert contact.fields == {str(birthday.pk): "1990-04-01"}
    assert contact.tags == ["spring"]
    assert contact.source == "subscribe_form"
    assert SegmentMembership.objects.filter(segment=newsletter_segment, contact=contact).exists()
    event = Event.objects.get(event_type__key="subscribeFromApi-spring")
    assert event.params == {"ContactId": contact.pk, "EmailAddress": "ola@example.com"}
    submission = SignupSubmission.objects.get()
    assert submission.consent_text == "I agree to get the spring newsletter."
    assert submission.consented_at is not None
    assert submission.ip == "203.0.113.9"
    assert submission.user_agent == "Firefox/140"
    assert submission.created_contact

    thanks = client.get(response["Location"])
    assert b"Welcome aboard!" in thanks.content


def test_second_submission_updates_the_contact_and_keeps_its_tags(client, signup, birthday):
    known = ContactFactory(email="ola@example.com", tags=["vip"], confirmed=True)
    response = client.post("/f/spring/", answers(birthday, first_name="Olha"))
    assert response.status_code == 302
    known.refresh_from_db()
    assert known.first_name == "Olha"
    assert known.tags == ["vip", "spring"]
    assert Event.objects.filter(event_type__key="subscribeUpdateFromApi-spring").count() == 1
    totals = signup_form_stats(form=signup).totals
    assert (totals.submissions, totals.new_contacts, totals.updated_contacts) == (1, 0, 1)


def test_field_errors_are_shown_by_their_fields_in_the_forms_language(client, signup, birthday):
    signup_form_update(form=signup, language="uk")
    response = client.post(
        "/f/spring/",
        answers(birthday, email="not-an-address", first_name="", consent=""),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert '<html lang="uk">' in page
    assert 'id="id_email_error"' in page
    assert 'aria-invalid="true"' in page
    assert "Це поле обов" in page  # "This field is required." in Ukrainian
    assert "Введіть коректну адресу електронної пошти." in page
    assert not Contact.objects.exists()


def test_redirect_after_submitting_and_the_form_action_allows_it(client, signup, birthday):
    signup_form_update(form=signup, redirect_url="https://shop.example/welcome")
    page = client.get("/f/spring/")
    assert "form-action 'self' https://shop.example" in page["Content-Security-Policy"]
    response = client.post("/f/spring/", answers(birthday))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/welcome"


def test_a_filled_honeypot_answers_like_success_and_stores_nothing(client, signup, birthday):
    response = client.post("/f/spring/", answers(birthday, website="http://spam.example"))
    assert response.status_code == 302
    assert not Contact.objects.exists()
    assert not SignupSubmission.objects.exists()
    assert signup_form_stats(form=signup).totals.spam == 1


def test_honeypot_is_hidden_from_people_and_assistive_technology(client, signup):
    page = client.get("/f/spring/").content.decode()
    assert '<div class="trap" aria-hidden="true">' in page
    assert 'name="website" id="id_website" tabindex="-1" autocomplete="off"' in page


@pytest.mark.parametrize("started", ["", "forged", None])
def test_a_form_sent_too_fast_or_without_a_signed_start_is_asked_again(
    client, signup, birthday, settings, started
):
    settings.HERALD_SIGNUP_MIN_SECONDS = 2
    data = answers(birthday)
    if started is not None:
        data["started"] = started
    response = client.post("/f/spring/", data)
    assert response.status_code == 400
    assert b"quicker than we expected" in response.content
    assert b'value="ola@example.com"' in response.content.lower()
    assert not Contact.objects.exists()
    assert signup_form_stats(form=signup).totals.spam == 1


def test_the_rate_limit_answers_429_with_a_friendly_page(client, signup, birthday, settings):
    settings.HERALD_SIGNUP_RATE_LIMIT = 3
    for n in range(3):
        response = client.post("/f/spring/", answers(birthday, email=f"p{n}@example.com"))
        assert response.status_code == 302
    refused = client.post("/f/spring/", answers(birthday, email="p9@example.com"))
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(settings.HERALD_SIGNUP_RATE_WINDOW_SECONDS)
    assert b"Too many attempts" in refused.content
    assert not Contact.objects.filter(email="p9@example.com").exists()
    other = client.post(
        "/f/spring/", answers(birthday, email="p10@example.com"), REMOTE_ADDR="198.51.100.7"
    )
    assert other.status_code == 302, "another address has its own count"


def test_a_disabled_or_unknown_form_is_404(client, signup):
    assert client.get("/f/nope/").status_code == 404
    signup_form_update(form=signup, enabled=False)
    for path in ("/f/spring/", "/f/spring/frame/", "/f/spring/embed.js", "/f/spring/thanks/"):
        assert client.get(path).status_code == 404, path


def test_views_are_counted_once_per_page_load_on_a_daily_row(client, signup):
    client.get("/f/spring/")
    client.get("/f/spring/frame/")
    client.get("/f/spring/embed.js")
    row = SignupDailyStat.objects.get(form=signup)
    assert row.views == 2


def test_only_the_framed_page_may_be_framed_by_other_sites(client, signup):
    hosted = client.get("/f/spring/")
    assert hosted["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in hosted["Content-Security-Policy"]
    framed = client.get("/f/spring/frame/")
    assert "X-Frame-Options" not in framed
    assert "frame-ancestors *" in framed["Content-Security-Policy"]
    assert "script-src 'self'" in framed["Content-Security-Policy"]


def test_embed_script_points_at_the_framed_page_on_the_public_address(client, signup, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    response = client.get("/f/spring/embed.js")
    assert response["Content-Type"].startswith("text/javascript")
    assert b'"https://herald.example.com/f/spring/frame/"' in response.content


def test_double_opt_in_off_confirms_at_once_and_sends_no_email(
    client, signup, birthday, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    signup_form_update(form=signup, double_optin=False)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/f/spring/", answers(birthday))
    assert Contact.objects.get(email="ola@example.com").confirmed
    assert mailoutbox == []


def test_the_address_comes_from_the_trusted_proxy_and_a_garbled_one_is_not_stored(
    client, signup, birthday, settings
):
    settings.HERALD_TRUST_X_FORWARDED_FOR = True
    client.post("/f/spring/", answers(birthday), HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
    client.post(
        "/f/spring/",
        answers(birthday, email="two@example.com"),
        HTTP_X_FORWARDED_FOR="1.2.3.4, garbage",
    )
    assert sorted(SignupSubmission.objects.values_list("ip", flat=True), key=str) == [
        "198.51.100.20",
        None,
    ]
